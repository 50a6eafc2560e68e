// Typed configs from JSON objects, strictly: known keys are read into fields (absent keys keep
// the field's default) and any other key is an error when the reader goes out of scope, so a
// typo in a config file is an error rather than a silently ignored setting.
//
//   {
//     io::JsonFields r(j, "gpt config");
//     r("embed_dim", c.embed_dim);       // "gpt config 'embed_dim': <why>" when the type is wrong
//     r("num_layers", c.num_layers);
//   }                                    // "gpt config: unknown key 'vocab'" for anything else
//
// A nested section is read in place with section(): r.section("attention", c.attention) calls the
// member type's from_json on the existing value, so the keys the section leaves out keep the
// model's defaults (a GPT's causal attention) rather than the member type's (j.get<T>() would
// start from a default-constructed value).
#pragma once
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "wensu/core/check.h"

namespace wensu::io {

class JsonFields {
 public:
  JsonFields(const nlohmann::json& j, std::string what) : j_(j), what_(std::move(what)) {
    WENSU_CHECK(j.is_object(), what_, " must be a JSON object");
  }
  template <typename T>
  void operator()(const char* key, T& field) {
    known_.insert(key);
    if (!j_.contains(key)) return;
    try {
      field = j_.at(key).get<T>();
    } catch (const nlohmann::json::exception& e) {
      throw Error(detail::concat(what_, " '", key, "': ", e.what()));
    }
  }
  template <typename T>
  void section(const char* key, T& field) {
    known_.insert(key);
    if (j_.contains(key)) from_json(j_.at(key), field);  // the type's reader, found by ADL
  }
  ~JsonFields() noexcept(false) {
    if (std::uncaught_exceptions()) return;
    for (auto& [k, v] : j_.items()) WENSU_CHECK(known_.count(k), what_, ": unknown key '", k, "'");
  }
  JsonFields(const JsonFields&) = delete;
  JsonFields& operator=(const JsonFields&) = delete;

 private:
  const nlohmann::json& j_;
  std::string what_;
  std::set<std::string> known_;
};

}  // namespace wensu::io
