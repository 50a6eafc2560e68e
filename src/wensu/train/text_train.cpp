#include "wensu/train/text_train.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "wensu/core/check.h"
#include "wensu/dist/comm.h"
#include "wensu/io/checkpoint.h"
#include "wensu/io/fasta.h"
#include "wensu/text/tokenizer.h"
#include "wensu/text/tokenizer_store.h"
#include "wensu/train/state.h"
#include "wensu/train/text_data.h"

namespace wensu::train {
namespace {

bool has_moe(const models::GptConfig& c) { return c.ffn.kind == "moe"; }

class CausalLmTask : public TokenLmTask {
 public:
  CausalLmTask(const TextTrainOptions& opt, models::Gpt& model, const text::Tokenizer& tok, TextShare& data,
               const TokenCorpus* val)
      : opt_(opt), model_(model), tok_(tok), data_(data), val_(val) {}
  nn::Module& model() override { return model_; }
  Tensor forward(const Tensor& tokens) override { return model_.forward(tokens); }
  Tensor aux_loss() const override { return model_.aux_loss(); }
  LmBatch next_batch() override { return data_.next(); }
  Tensor cursors() const override { return data_.cursors(); }
  void restore(const Tensor& c) override { data_.restore(c); }
  int64_t epoch() const override { return data_.epoch(); }
  std::pair<double, int64_t> validate() override {
    if (!val_) return {0.0, -1};
    const bool was_training = model_.is_training();
    model_.eval();
    const int64_t rows = std::max<int64_t>(1, opt_.batch_rows / dist::Communicator::world().size());
    auto r = causal_lm_loss([&](const Tensor& t) { return model_.forward(t); }, *val_, opt_.seq_len, rows,
                            opt_.val_windows);
    model_.train(was_training);
    return r;
  }
  std::string model_config_json() const override { return nlohmann::json(opt_.model).dump(); }
  std::string train_config_json() const override { return text_train_options_json(opt_); }
  std::map<std::string, std::string> checkpoint_meta() const override {
    auto meta = text::tokenizer_meta(tok_);
    meta["model"] = "gpt";
    return meta;
  }

 private:
  const TextTrainOptions& opt_;
  models::Gpt& model_;
  const text::Tokenizer& tok_;
  TextShare& data_;
  const TokenCorpus* val_;
};

}  // namespace

std::string text_train_options_json(const TextTrainOptions& o) {
  nlohmann::json j = {{"data", o.data},
                      {"val_data", o.val_data},
                      {"steps", o.steps},
                      {"seq_len", o.seq_len},
                      {"batch_rows", o.batch_rows},
                      {"data_streams", o.data_streams},
                      {"accumulate", o.accumulate},
                      {"schedule", o.schedule},
                      {"adamw", o.adamw},
                      {"clip_norm", o.clip_norm},
                      {"seed", o.seed},
                      {"val_every", o.val_every},
                      {"val_windows", o.val_windows},
                      {"ckpt_every", o.ckpt_every}};
  return j.dump();
}

void apply_text_train_options_json(const std::string& text, TextTrainOptions& o) {
  const auto j = nlohmann::json::parse(text);
  o.data = j.at("data").get<std::vector<std::string>>();
  o.val_data = j.at("val_data").get<std::vector<std::string>>();
  o.steps = j.at("steps");
  o.seq_len = j.at("seq_len");
  o.batch_rows = j.at("batch_rows");
  o.data_streams = j.at("data_streams");
  o.accumulate = j.at("accumulate");
  o.schedule = j.at("schedule").get<optim::ScheduleConfig>();
  o.adamw = j.at("adamw").get<optim::AdamWConfig>();
  o.clip_norm = j.at("clip_norm");
  o.seed = j.at("seed");
  o.val_every = j.at("val_every");
  o.val_windows = j.at("val_windows");
  o.ckpt_every = j.at("ckpt_every");
}

TrainResult run_text_train(TextTrainOptions opt) {
  const dist::Communicator& world = dist::Communicator::world();
  const std::string ckpt = opt.out_dir + "/checkpoint.h5";
  std::unique_ptr<text::Tokenizer> tok;
  if (opt.resume) {
    const auto info = adopt_resumed_settings<models::GptConfig>(opt, "text train", apply_text_train_options_json);
    tok = text::tokenizer_from_meta(info.meta, ckpt);
  } else {
    WENSU_CHECK(!opt.tokenizer.empty(), "text train: --tokenizer is required (a folder with vocab.json and merges.txt,",
                " or a SentencePiece .model from `wensu text tokenizer-train`)");
    tok = text::load_tokenizer(opt.tokenizer);
    opt.model.vocab_size = tok->vocab_size();
    opt.model.eos_id = tok->eos_id();
  }
  if (opt.seq_len <= 0) opt.seq_len = opt.model.max_positions;
  WENSU_CHECK(opt.seq_len <= opt.model.max_positions, "text train: --seq-len ", opt.seq_len,
              " is longer than the model's context (max_positions ", opt.model.max_positions, ")");
  opt.model.validate();
  const int ep = opt.expert_parallel > 0 ? opt.expert_parallel : (has_moe(opt.model) ? world.size() : 1);
  dist::ParallelGroups groups = dist::make_parallel_groups(ep);
  if (world.rank() == 0) std::filesystem::create_directories(opt.out_dir);
  world.barrier();

  // Every rank tokenises the corpus (it is read whole; the streams sample from all of it).
  const bool show = opt.progress && world.rank() == 0;
  const TokenCorpus corpus = tokenize_corpus(opt.data, *tok, "training text", show);
  std::unique_ptr<TokenCorpus> val;
  if (!opt.val_data.empty()) {
    val = std::make_unique<TokenCorpus>(tokenize_corpus(opt.val_data, *tok, "validation text", show));
    WENSU_CHECK(int64_t(val->ids.size()) > opt.seq_len, "text train: the validation text has ", val->ids.size(),
                " tokens, fewer than one window of --seq-len ", opt.seq_len, " + 1; give more text or drop --val-data");
  }

  manual_seed(opt.seed);
  models::Gpt model(opt.model, generator("default"), world.size() > 1 ? &groups : nullptr);
  init_lm_weights(model, opt.seed);
  model.train();
  optim::AdamW adamw(model.named_parameters(), opt.adamw);
  if (opt.data_streams <= 0) opt.data_streams = world.size();
  const int64_t streams = opt.data_streams, per_rank = streams / world.size();
  WENSU_CHECK(streams % world.size() == 0, "text train: ", streams, " data streams do not divide over ", world.size(),
              " processes; use a number of processes that divides --data-streams (this run's: ", streams, ")");
  TextDataConfig dc;
  dc.seq_len = opt.seq_len;
  dc.batch_rows = opt.batch_rows;
  dc.seed = opt.seed;
  dc.streams = streams;
  TextShare data(corpus, dc, world.rank() * per_rank, per_rank);
  CausalLmTask task(opt, model, *tok, data, val.get());
  LmLoopOptions lo = loop_options(opt, "text train", &groups);
  lo.val_items = "val_windows";
  return run_lm_loop(task, adamw, lo);
}

}  // namespace wensu::train
