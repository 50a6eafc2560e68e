#include "wensu/train/mm_train.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "wensu/autograd/grad_mode.h"
#include "wensu/core/check.h"
#include "wensu/dist/comm.h"
#include "wensu/dist/gather.h"
#include "wensu/io/checkpoint.h"
#include "wensu/mm/pairs.h"
#include "wensu/mm/retrieval.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/contrastive.h"
#include "wensu/ops/indexing.h"
#include "wensu/text/tokenizer.h"
#include "wensu/text/tokenizer_store.h"
#include "wensu/train/state.h"

namespace wensu::train {
namespace {

class ContrastiveTask : public LmTask {
 public:
  ContrastiveTask(const MmTrainOptions& opt, models::DualEncoder& model, const text::Tokenizer& tok,
                  const mm::PairSet& train, const mm::PairSet* val, mm::PairStream& stream)
      : opt_(opt), model_(model), tok_(tok), train_(train), val_(val), stream_(stream) {}

  nn::Module& model() override { return model_; }
  LmBatch next_batch() override {
    const std::vector<int64_t> rows = stream_.next();
    std::vector<std::vector<int64_t>> ids;
    for (int64_t r : rows) ids.push_back(train_.ids[size_t(r)]);
    mm::TokenBatch tb = mm::pad_captions(ids, tok_.eos_id());
    LmBatch b;
    b.tokens = tb.ids;
    b.lengths = tb.lengths;
    b.images = ops::index_select(train_.pixels, 0, Tensor::from_vector(rows, {int64_t(rows.size())}));
    // Keyed by the batch's position in the run, so a resumed run draws the same shifts.
    if (opt_.shift > 0)
      b.images = mm::shift_images(b.images, opt_.shift, opt_.seed, uint64_t(stream_.served()), stream_.first_row());
    b.targets_count = b.real_tokens = int64_t(rows.size());
    return b;
  }
  // This rank's pairs are rows [rank * b, (rank + 1) * b) of the gathered global batch. Its part
  // of the loss times the world size (the loop averages gradients over ranks), times this
  // micro-batch's share of the step.
  Tensor micro_loss(const LmBatch& b, int64_t step_targets, int world) override {
    const dist::Communicator& c = dist::Communicator::world();
    Tensor img = model_.encode_images(b.images);              // [b, E]
    Tensor txt = model_.encode_texts(b.tokens, b.lengths);    // [b, E]
    const int64_t n = b.targets_count;
    if (world > 1) {
      img = dist::all_gather_rows(img, c);  // [world * b, E]
      txt = dist::all_gather_rows(txt, c);
    }
    Tensor part = ops::contrastive_loss(img, txt, model_.log_scale, world > 1 ? c.rank() * n : 0, n);
    return ops::scale(part, double(world) * double(n) * double(world) / double(step_targets));
  }
  Tensor cursors() const override {
    const bool root = dist::Communicator::world().rank() == 0;
    return Tensor::from_vector(std::vector<int64_t>{root ? stream_.served() : 0}, {1, 1});
  }
  void restore(const Tensor& c) override { stream_.restore(c.contiguous().data<int64_t>()[0]); }
  int64_t epoch() const override { return int64_t(stream_.epoch()); }
  int64_t skipped_records() const override {
    return dist::Communicator::world().rank() == 0 ? train_.skipped : 0;
  }
  // The held-out pairs as one batch: its contrastive loss (every other pair a negative) and
  // recall@1 both ways. Each rank embeds its share of the pairs and the embeddings are gathered,
  // so every rank holds the same result; the loop logs rank 0's.
  std::pair<double, int64_t> validate() override {
    if (!val_) return {0.0, -1};
    const dist::Communicator& c = dist::Communicator::world();
    const int64_t n = val_->size(), first = n * c.rank() / c.size(), end = n * (c.rank() + 1) / c.size();
    Tensor img = Tensor::zeros({0, model_.config().embed_dim}), txt = img;  // [end - first, E]
    if (end > first) {
      img = mm::embed_images(model_, val_->pixels.narrow(0, first, end - first).contiguous());
      txt = mm::embed_texts(model_, {val_->ids.begin() + first, val_->ids.begin() + end}, tok_.eos_id());
    }
    img = dist::all_gather_rows(img, c);  // [n, E], rank 0's rows first
    txt = dist::all_gather_rows(txt, c);
    val_metrics_.clear();
    for (const auto& [k, v] : mm::recall_at_k(img, txt, {1, 5})) val_metrics_["val_" + k] = v;  // val_i2t_r1 ...
    NoGradGuard ng;
    // Unit rows already: l2_normalize inside contrastive_loss leaves them as they are.
    const double loss = ops::contrastive_loss(img, txt, model_.log_scale.to(Device::cpu).to(DType::f32)).item();
    return {loss, val_->size()};
  }
  std::map<std::string, double> validation_metrics() const override { return val_metrics_; }
  std::map<std::string, double> step_metrics() const override {
    return {{"logit_scale", std::exp(model_.log_scale.to(Device::cpu).item())}};
  }
  std::string model_config_json() const override { return nlohmann::json(opt_.model).dump(); }
  std::string train_config_json() const override { return mm_train_options_json(opt_); }
  std::map<std::string, std::string> checkpoint_meta() const override {
    auto meta = text::tokenizer_meta(tok_);
    meta["model"] = "dual_encoder";
    return meta;
  }

 private:
  const MmTrainOptions& opt_;
  models::DualEncoder& model_;
  const text::Tokenizer& tok_;
  const mm::PairSet& train_;
  const mm::PairSet* val_;
  mm::PairStream& stream_;
  std::map<std::string, double> val_metrics_;
};

// The text tower's weights from a text model checkpoint (its bfloat16 matrices become float32):
// every parameter for a transformer tower; the token embeddings for a bag of words, so the
// baseline starts from the same pretrained vectors.
void load_text_tower(models::DualEncoder& model, const std::string& path) {
  io::Checkpoint ck = io::load_checkpoint(path);
  NoGradGuard ng;
  if (model.text_tower) {
    io::load_tensors_into(ck.params, to_io(model.text_tower->named_parameters()), path, "parameter");
    return;
  }
  std::vector<io::NamedTensor> table;
  for (const auto& nt : ck.params)
    if (nt.name == "embed_tokens.weight") table.push_back({"weight", nt.tensor});
  io::load_tensors_into(table, to_io(model.text_words->named_parameters()), path, "parameter");
}

}  // namespace

std::string mm_train_options_json(const MmTrainOptions& o) {
  nlohmann::json j = {{"data", o.data},
                      {"train_split", o.train_split},
                      {"val_split", o.val_split},
                      {"text_init", o.text_init},
                      {"steps", o.steps},
                      {"batch", o.batch},
                      {"accumulate", o.accumulate},
                      {"max_tokens", o.max_tokens},
                      {"shift", o.shift},
                      {"text_lr_scale", o.text_lr_scale},
                      {"dropout", o.dropout},
                      {"schedule", o.schedule},
                      {"adamw", o.adamw},
                      {"clip_norm", o.clip_norm},
                      {"seed", o.seed},
                      {"val_every", o.val_every},
                      {"ckpt_every", o.ckpt_every},
                      {"strict", o.strict}};
  return j.dump();
}

void apply_mm_train_options_json(const std::string& text, MmTrainOptions& o) {
  const auto j = nlohmann::json::parse(text);
  o.data = j.at("data");
  o.train_split = j.at("train_split");
  o.val_split = j.at("val_split");
  o.text_init = j.at("text_init");
  o.steps = j.at("steps");
  o.batch = j.at("batch");
  o.accumulate = j.at("accumulate");
  o.max_tokens = j.at("max_tokens");
  o.shift = j.at("shift");
  o.text_lr_scale = j.at("text_lr_scale");
  o.dropout = j.at("dropout");
  o.schedule = j.at("schedule").get<optim::ScheduleConfig>();
  o.adamw = j.at("adamw").get<optim::AdamWConfig>();
  o.clip_norm = j.at("clip_norm");
  o.seed = j.at("seed");
  o.val_every = j.at("val_every");
  o.ckpt_every = j.at("ckpt_every");
  o.strict = j.at("strict");
}

TrainResult run_mm_train(MmTrainOptions opt) {
  const dist::Communicator& world = dist::Communicator::world();
  const std::string ckpt = opt.out_dir + "/checkpoint.h5";
  std::unique_ptr<text::Tokenizer> tok;
  bool init_text = false;
  if (opt.resume) {
    const auto info = adopt_resumed_settings<models::DualEncoderConfig>(opt, "mm train", apply_mm_train_options_json);
    tok = text::tokenizer_from_meta(info.meta, ckpt);
  } else if (!opt.text_init.empty()) {
    // The text model's tokenizer, and for a transformer tower its architecture and weights.
    const io::CheckpointInfo info = io::inspect_checkpoint(opt.text_init);
    const auto kind = info.meta.find("model");
    WENSU_CHECK(kind != info.meta.end() && kind->second == "gpt", "mm train: --text-init ", opt.text_init,
                " is not a text model checkpoint (it holds ",
                kind == info.meta.end() ? std::string("no model kind") : kind->second,
                "); give one from `wensu text train`, e.g. data/models/wensu-text/model.h5");
    tok = text::tokenizer_from_meta(info.meta, opt.text_init);
    opt.model.text = nlohmann::json::parse(info.model_config).get<models::GptConfig>();
    opt.model.text.dropout = 0.0;
    init_text = true;
  } else {
    WENSU_CHECK(!opt.tokenizer.empty(), "mm train: give --text-init (a text model: its tokenizer and weights) or",
                " --tokenizer (a SentencePiece .model or a BPE folder)");
    tok = text::load_tokenizer(opt.tokenizer);
  }
  if (!opt.resume) {
    opt.model.text.vocab_size = tok->vocab_size();
    opt.model.text.eos_id = tok->eos_id();
    if (opt.max_tokens <= 0) opt.max_tokens = opt.model.text.max_positions;
    WENSU_CHECK(opt.max_tokens <= opt.model.text.max_positions, "mm train: --max-tokens ", opt.max_tokens,
                " exceeds the text tower's context (max_positions ", opt.model.text.max_positions, ")");
  }
  if (opt.dropout >= 0) opt.model.image.dropout = opt.model.text.dropout = opt.dropout;
  opt.model.validate();
  WENSU_CHECK(opt.shift >= 0 && opt.shift < opt.model.image.image_size, "mm train: --shift must be in [0, image size)");
  WENSU_CHECK(opt.text_lr_scale > 0, "mm train: --text-lr-scale must be > 0, got ", opt.text_lr_scale);
  WENSU_CHECK(opt.batch % world.size() == 0, "mm train: the batch of ", opt.batch, " pairs does not divide over ",
              world.size(), " processes; give a --batch that is a multiple of the process count");
  const bool show = opt.progress && world.rank() == 0;
  mm::PairOptions po;
  po.image.size = opt.model.image.image_size;
  po.max_tokens = opt.max_tokens;
  po.strict = opt.strict;
  po.progress = show;
  po.split = opt.train_split;
  const mm::PairSet train = mm::read_pairs(opt.data, *tok, po);
  std::unique_ptr<mm::PairSet> val;
  if (!opt.val_split.empty()) {
    po.split = opt.val_split;
    val = std::make_unique<mm::PairSet>(mm::read_pairs(opt.data, *tok, po));
  }
  // Only now: bad pairs or images (with --strict) leave no run folder behind.
  if (world.rank() == 0) std::filesystem::create_directories(opt.out_dir);
  world.barrier();

  manual_seed(opt.seed);
  models::DualEncoder model(opt.model, generator("default"));
  init_lm_weights(model, opt.seed);
  if (init_text) load_text_tower(model, opt.text_init);
  model.train();
  optim::AdamW adamw(model.named_parameters(), opt.adamw);
  adamw.scale_lr(model.text_tower ? "text." : "text_bow.", opt.text_lr_scale);
  const int64_t per_rank = opt.batch / world.size();
  mm::PairStream stream(train, opt.batch, opt.seed, world.rank() * per_rank, per_rank);
  ContrastiveTask task(opt, model, *tok, train, val.get(), stream);
  const dist::ParallelGroups groups = dist::make_parallel_groups(1);  // plain data parallel
  LmLoopOptions lo = loop_options(opt, "mm train", &groups);
  lo.val_items = "val_pairs";
  lo.unit = "pairs";
  lo.perplexity = false;
  return run_lm_loop(task, adamw, lo);
}

}  // namespace wensu::train
