// wensu mm: the two-tower image-text model (BriVL/CLIP style) on the shared engine. `train` is
// contrastive training (wensu/train/mm_train.h, the loop of the language models), `eval` gives
// recall@k on held-out pairs, `search` ranks images for a text or texts for an image, `embed`
// writes embeddings to HDF5.
#include <boost/program_options.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "wensu/core/check.h"
#include "wensu/core/parallel.h"
#include "wensu/io/hdf5_write.h"
#include "wensu/io/jsonl.h"
#include "wensu/mm/model_file.h"
#include "wensu/mm/pairs.h"
#include "wensu/mm/retrieval.h"
#include "wensu/train/mm_train.h"

namespace po = boost::program_options;

namespace wensu::app {
namespace {

constexpr const char* kUsage =
    "usage: wensu mm COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  train   contrastive training of a two-tower image-text model on image-caption pairs\n"
    "  eval    recall@k of a model on held-out pairs, both directions, against chance\n"
    "  search  the images that best match a text, or the texts that best match an image\n"
    "  embed   image or text embeddings to an HDF5 file\n"
    "\n"
    "Pairs come from scripts/data/make-mm-data.sh (colour emoji and icons with their names).\n"
    "'wensu mm COMMAND --help' describes each.\n";

models::DualEncoderConfig read_mm_config(const std::string& path) {
  nlohmann::json j = io::read_json_file(path);
  // vocab_size comes from the tokenizer; a text section may be left out (--text-init gives it).
  if (j.is_object()) {
    if (!j.contains("text")) j["text"] = nlohmann::json::object();
    if (j["text"].is_object()) j["text"]["vocab_size"] = j["text"].value("vocab_size", int64_t(1));
  }
  try {
    return j.get<models::DualEncoderConfig>();
  } catch (const nlohmann::json::exception& e) {
    throw Error("mm train: " + path + ": " + e.what());
  }
}

int mm_train(const Args& args) {
  train::MmTrainOptions opt;
  std::string config, tower, pool;
  int threads = 0;
  bool quiet = false;
  po::options_description desc(
      "usage: wensu mm train --config MM.json --data pairs.tsv (--text-init TEXT.h5 | --tokenizer TOK) --out RUN/\n"
      "       mpirun -np N wensu mm train ...   (data parallel; negatives gathered from all ranks)\n\n"
      "Trains a two-tower image-text model (MM.json, e.g. data/configs/mm_small.json: a ViT image\n"
      "tower, a text tower and the shared embedding size) with the symmetric InfoNCE loss and a\n"
      "learned temperature, every other pair of the batch a negative. --text-init starts the text\n"
      "tower from a text model (`wensu text train`, e.g. data/models/wensu-text/model.h5: its\n"
      "tokenizer, its layers, or for --text-tower bow its token embeddings). Validation on the --val-split pairs logs the loss and recall@1/5. The trainer\n"
      "is the language models': RUN/metrics.jsonl, RUN/checkpoint.h5, --resume.\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("config", po::value(&config), "model config (JSON, models::DualEncoderConfig)")
      ("data", po::value(&opt.data), "pairs.tsv (split, image, caption, source)")
      ("text-init", po::value(&opt.text_init), "text model checkpoint: tokenizer and text tower weights")
      ("tokenizer", po::value(&opt.tokenizer), "or only a tokenizer: SentencePiece .model or GPT-2 BPE folder")
      ("text-tower", po::value(&tower), "override the config's text tower: transformer or bow (bag of words, the baseline)")
      ("text-pool", po::value(&pool), "override the config's pooling of the transformer tower: last (CLIP's) or mean")
      ("out,o", po::value(&opt.out_dir)->default_value("wensu-mm"), "run folder")
      ("train-split", po::value(&opt.train_split)->default_value(opt.train_split), "split of pairs.tsv to train on")
      ("val-split", po::value(&opt.val_split)->default_value(opt.val_split), "split to validate on (empty: none)")
      ("batch", po::value(&opt.batch)->default_value(opt.batch), "pairs per micro-batch over all ranks (the in-batch negatives)")
      ("max-tokens", po::value(&opt.max_tokens)->default_value(opt.max_tokens), "caption tokens (end-of-text included; 0 = the text tower's context); longer captions are cut")
      ("text-lr-scale", po::value(&opt.text_lr_scale)->default_value(opt.text_lr_scale), "the text tower's learning rate as a fraction of --lr (a pretrained tower may want less)")
      ("shift", po::value(&opt.shift)->default_value(opt.shift), "augmentation: move each training image by up to this many pixels (0 = off)")
      ("dropout", po::value(&opt.dropout)->default_value(opt.dropout), "dropout of both towers (< 0: the configs')")
      ("strict", po::bool_switch(&opt.strict), "stop at an unreadable image instead of skipping its pair")
      ("threads", po::value(&threads)->default_value(0), "CPU threads per rank (0 = all cores / ranks on this node)")
      ("quiet", po::bool_switch(&quiet), "no progress bar");
  add_trainer_options(desc, opt, 5e-4, 0.1, 0.1);
  if (!parse_options(desc, args)) return 0;
  MpiScope mpi;
  set_num_threads(threads);
  opt.progress = !quiet;
  if (!opt.resume) {
    WENSU_CHECK(!config.empty(), "mm train: --config MM.json is required (e.g. data/configs/mm_small.json)");
    WENSU_CHECK(!opt.data.empty(), "mm train: --data pairs.tsv is required (scripts/data/make-mm-data.sh makes one)");
    opt.model = read_mm_config(config);
    if (!tower.empty()) opt.model.text_tower = tower;
    if (!pool.empty()) opt.model.text_pool = pool;
    if (opt.steps <= 0) opt.steps = 1000;
    opt.schedule.total_steps = opt.steps;
  }
  return report_training(train::run_mm_train(opt), opt.out_dir);
}

std::string model_or_bundled(const std::string& path) {
  return path.empty() ? mm::default_image_text_model_path() : path;
}

int mm_eval(const Args& args) {
  std::string model_path, data, split;
  std::vector<int64_t> ks = {1, 5, 10};
  bool strict = false, json_only = false;
  int threads = 0;
  po::options_description desc(
      "usage: wensu mm eval [--model M.h5] --data pairs.tsv [--split test]\n\n"
      "Retrieval among the pairs of one split: for each image, the rank of its own caption among\n"
      "all the split's captions (image -> text), and for each caption the rank of its image (text\n"
      "-> image). Prints recall@k both ways next to chance (k / pairs) and one JSON line.\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("model,m", po::value(&model_path), "model checkpoint (default: the bundled data/models/wensu-mm/model.h5)")
      ("data", po::value(&data), "pairs.tsv")
      ("split", po::value(&split)->default_value("test"), "the split to evaluate (empty: all pairs)")
      ("strict", po::bool_switch(&strict), "an unreadable image is an error instead of a skipped pair")
      ("json", po::bool_switch(&json_only), "print only the JSON line")
      ("threads", po::value(&threads)->default_value(0), "CPU threads (0 = all cores)");
  if (!parse_options(desc, args)) return 0;
  WENSU_CHECK(!data.empty(), "mm eval: --data pairs.tsv is required");
  set_num_threads(threads);
  mm::ImageTextModel m = mm::load_image_text_model(model_or_bundled(model_path));
  mm::PairOptions po;
  po.split = split;
  po.image.size = m.model->config().image.image_size;
  po.max_tokens = m.max_tokens;
  po.strict = strict;
  const mm::PairSet set = mm::read_pairs(data, *m.tokenizer, po);
  const Tensor img = mm::embed_images(*m.model, set.pixels), txt = mm::embed_texts(*m.model, set.ids, m.tokenizer->eos_id());
  const auto r = mm::recall_at_k(img, txt, ks);
  const double n = double(set.size());
  nlohmann::json j = {{"model", m.path}, {"data", data}, {"split", split}, {"pairs", set.size()},
                      {"skipped", set.skipped}, {"text_tower", m.model->config().text_tower}};
  for (const auto& [k, v] : r) j[k] = v;
  for (int64_t k : ks) j["chance_r" + std::to_string(k)] = std::min(1.0, double(k) / n);
  if (!json_only) {
    std::printf("%lld %s pairs of %s (%s text tower)\n", (long long)set.size(), split.empty() ? "" : split.c_str(),
                data.c_str(), m.model->config().text_tower.c_str());
    std::printf("%-16s", "recall@k");
    for (int64_t k : ks) std::printf("   R@%-4lld", (long long)k);
    std::printf("\n");
    for (const char* dir : {"i2t", "t2i"}) {
      std::printf("%-16s", std::string(dir) == "i2t" ? "image -> text" : "text -> image");
      for (int64_t k : ks) std::printf("  %6.1f%%", 100 * r.at(std::string(dir) + "_r" + std::to_string(k)));
      std::printf("\n");
    }
    std::printf("%-16s", "chance");
    for (int64_t k : ks) std::printf("  %6.1f%%", 100 * std::min(1.0, double(k) / n));
    std::printf("\n");
  }
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

// One caption per line (empty lines skipped), or the captions of a pairs.tsv.
std::vector<std::string> read_texts(const std::string& path) {
  std::ifstream in(path);
  WENSU_CHECK(in, "cannot read ", path, " (a text file with one caption per line, or a pairs.tsv)");
  std::vector<std::string> out;
  std::string line;
  bool tsv = false;
  for (int64_t ln = 1; std::getline(in, line); ++ln) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (ln == 1 && line.rfind("split\timage\tcaption", 0) == 0) {
      tsv = true;
      continue;
    }
    if (tsv) {
      const size_t a = line.find('\t'), b = a == std::string::npos ? a : line.find('\t', a + 1);
      if (b == std::string::npos) continue;
      const size_t c = line.find('\t', b + 1);
      line = line.substr(b + 1, c == std::string::npos ? std::string::npos : c - b - 1);
    }
    if (!line.empty()) out.push_back(line);
  }
  WENSU_CHECK(!out.empty(), path, " has no texts");
  return out;
}

std::vector<std::vector<int64_t>> encode_all(const mm::ImageTextModel& m, const std::vector<std::string>& texts) {
  std::vector<std::vector<int64_t>> ids;
  for (const auto& t : texts) ids.push_back(mm::encode_caption(*m.tokenizer, t, m.max_tokens));
  return ids;
}

int mm_search(const Args& args) {
  std::string model_path, query, image, texts;
  std::vector<std::string> images;
  int64_t k = 5;
  int threads = 0;
  po::options_description desc(
      "usage: wensu mm search [--model M.h5] --query TEXT --images DIR|FILE... [-k 5]   (text -> images)\n"
      "       wensu mm search [--model M.h5] --image FILE --texts captions.txt [-k 5]   (image -> texts)\n\n"
      "Ranks by cosine similarity in the model's shared space and prints the top k with scores.\n"
      "--texts is one caption per line, or a pairs.tsv (its captions).\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("model,m", po::value(&model_path), "model checkpoint (default: the bundled data/models/wensu-mm/model.h5)")
      ("query,q", po::value(&query), "text to find images for")
      ("images", po::value(&images)->multitoken(), "image files or folders (PNG, JPEG) to search")
      ("image", po::value(&image), "image to find texts for")
      ("texts", po::value(&texts), "candidate texts: one per line, or a pairs.tsv")
      ("top,k", po::value(&k)->default_value(k), "results to print")
      ("threads", po::value(&threads)->default_value(0), "CPU threads (0 = all cores)");
  if (!parse_options(desc, args)) return 0;
  WENSU_CHECK(query.empty() != image.empty(), "mm search: give either --query TEXT (with --images) or --image FILE (with --texts)");
  WENSU_CHECK(k >= 1, "mm search: -k must be >= 1");
  set_num_threads(threads);
  mm::ImageTextModel m = mm::load_image_text_model(model_or_bundled(model_path));
  io::ImageOptions io_opt;
  io_opt.size = m.model->config().image.image_size;
  if (!query.empty()) {
    WENSU_CHECK(!images.empty(), "mm search: --query needs --images (files or folders to search)");
    const mm::PairSet set = mm::read_images(images, io_opt, false);
    const Tensor cand = mm::embed_images(*m.model, set.pixels);
    const Tensor q = mm::embed_texts(*m.model, encode_all(m, {query}), m.tokenizer->eos_id());
    std::printf("query: %s  (%lld images)\n", query.c_str(), (long long)set.images.size());
    int rank = 0;
    for (const auto& [i, s] : mm::top_k(q, cand, k))
      std::printf("%3d  %.4f  %s\n", ++rank, double(s), set.images[size_t(i)].c_str());
    return 0;
  }
  WENSU_CHECK(!texts.empty(), "mm search: --image needs --texts (a file of candidate captions)");
  const std::vector<std::string> cands = read_texts(texts);
  const mm::PairSet one = mm::read_images({image}, io_opt, true);
  const Tensor q = mm::embed_images(*m.model, one.pixels);
  const Tensor cand = mm::embed_texts(*m.model, encode_all(m, cands), m.tokenizer->eos_id());
  std::printf("image: %s  (%lld texts)\n", image.c_str(), (long long)cands.size());
  int rank = 0;
  for (const auto& [i, s] : mm::top_k(q, cand, k)) std::printf("%3d  %.4f  %s\n", ++rank, double(s), cands[size_t(i)].c_str());
  return 0;
}

int mm_embed(const Args& args) {
  std::string model_path, texts, out;
  std::vector<std::string> images;
  bool strict = false;
  int threads = 0;
  po::options_description desc(
      "usage: wensu mm embed [--model M.h5] (--images DIR|FILE... | --texts FILE) -o out.h5\n\n"
      "Writes the unit-length embeddings of images or texts in the model's shared space to HDF5:\n"
      "'embeddings' float32 [N, E], 'names' (image paths or the texts), attributes 'kind' and\n"
      "'model'. Unreadable images are reported and skipped (or stop the run with --strict).\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("model,m", po::value(&model_path), "model checkpoint (default: the bundled data/models/wensu-mm/model.h5)")
      ("images", po::value(&images)->multitoken(), "image files or folders (PNG, JPEG)")
      ("texts", po::value(&texts), "texts: one per line, or a pairs.tsv (its captions)")
      ("out,o", po::value(&out), "output HDF5 file")
      ("strict", po::bool_switch(&strict), "stop at an unreadable image")
      ("threads", po::value(&threads)->default_value(0), "CPU threads (0 = all cores)");
  if (!parse_options(desc, args)) return 0;
  WENSU_CHECK(images.empty() != texts.empty(), "mm embed: give either --images or --texts");
  WENSU_CHECK(!out.empty(), "mm embed: -o out.h5 is required");
  set_num_threads(threads);
  mm::ImageTextModel m = mm::load_image_text_model(model_or_bundled(model_path));
  Tensor emb;
  std::vector<std::string> names;
  if (!images.empty()) {
    io::ImageOptions io_opt;
    io_opt.size = m.model->config().image.image_size;
    const mm::PairSet set = mm::read_images(images, io_opt, strict);
    emb = mm::embed_images(*m.model, set.pixels);
    names = set.images;
  } else {
    names = read_texts(texts);
    emb = mm::embed_texts(*m.model, encode_all(m, names), m.tokenizer->eos_id());
  }
  emb = emb.contiguous();
  io::write_hdf5_atomically(out, [&](hid_t file) {
    io::write_f32_matrix(file, "embeddings", emb.data<float>(), emb.size(0), emb.size(1), out);
    io::write_strings(file, "names", names, out);
    io::write_string_attr(file, "kind", images.empty() ? "texts" : "images", out);
    io::write_string_attr(file, "model", m.path, out);
  });
  std::printf("%lld %s embeddings of %lld values -> %s\n", (long long)emb.size(0), images.empty() ? "text" : "image",
              (long long)emb.size(1), out.c_str());
  return 0;
}

}  // namespace

int cmd_mm(const Args& args) {
  return run_subcommand("mm", "mm command", kUsage, args,
                        {{"train", mm_train}, {"eval", mm_eval}, {"search", mm_search}, {"embed", mm_embed}});
}

}  // namespace wensu::app
