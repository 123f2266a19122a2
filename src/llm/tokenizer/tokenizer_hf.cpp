// Loading a tokenizer from Hugging Face tokenizer.json (+ tokenizer_config.json): model BPE
// with a ByteLevel pre-tokenizer (GPT-2, SmolLM's Digits+ByteLevel, Llama-3's Split+ByteLevel)
// or SentencePiece-style (Metaspace pre-tokenizer or Prepend/Replace normalizer, byte fallback).
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "llm/tokenizer/tokenizer_impl.hpp"

namespace ik::llm {

namespace {
using nlohmann::json;

const char* const kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

json read_json(const std::string& path) {
  std::ifstream in(path);
  IK_CHECK(in.good(), "cannot open '{}'", path);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    fail("'{}' is not valid JSON: {}", path, e.what());
  }
}

std::string type_of(const json& j) { return j.is_object() ? j.value("type", "") : ""; }

// Flattens a pre-tokenizer (a Sequence or a single one) into its list of steps.
std::vector<json> steps_of(const json& j) {
  if (j.is_null()) return {};
  if (type_of(j) == "Sequence") {
    const json& list = j.contains("pretokenizers") ? j["pretokenizers"] : j["normalizers"];
    return std::vector<json>(list.begin(), list.end());
  }
  return {j};
}

std::string split_pattern(const json& step) {
  const json& p = step.at("pattern");
  return p.contains("Regex") ? p["Regex"].get<std::string>() : p.value("String", "");
}

void read_pre_tokenizer(const json& root, VocabSpec& spec) {
  const std::vector<json> steps = steps_of(root.value("pre_tokenizer", json()));
  std::vector<std::string> kinds;
  for (const json& s : steps) kinds.push_back(type_of(s));
  auto describe = [&] {
    std::string d;
    for (const std::string& k : kinds) d += (d.empty() ? "" : "+") + k;
    return d.empty() ? std::string("none") : d;
  };
  const bool byte_level = !kinds.empty() && kinds.back() == "ByteLevel";
  if (byte_level) {
    const json& bl = steps.back();
    spec.byte_level = true;
    spec.hf_add_prefix_space = bl.value("add_prefix_space", false);
    const bool uses_regex = bl.value("use_regex", true);
    if (kinds.size() == 1 && uses_regex) {
      spec.pre = PreTokenizer::kGpt2;
    } else if (kinds.size() == 2 && kinds[0] == "Digits" && uses_regex &&
               steps[0].value("individual_digits", false)) {
      spec.pre = PreTokenizer::kSmolLM;
    } else if (kinds.size() == 2 && kinds[0] == "Split" && !uses_regex &&
               split_pattern(steps[0]) == kLlama3Regex) {
      spec.pre = PreTokenizer::kLlama3;
    } else if (kinds.size() == 2 && kinds[0] == "Split" && !uses_regex &&
               split_pattern(steps[0]) == kGpt2Regex) {
      spec.pre = PreTokenizer::kGpt2;
    } else {
      fail("unsupported tokenizer.json pre-tokenizer {}", describe());
    }
    return;
  }
  spec.byte_level = false;
  spec.pre = PreTokenizer::kNone;
  if (kinds.size() == 1 && kinds[0] == "Metaspace") {
    const json& m = steps[0];
    std::string scheme = m.value("prepend_scheme", "");
    if (scheme.empty()) scheme = m.value("add_prefix_space", true) ? "always" : "never";
    spec.space_prefix = scheme == "always"  ? SpacePrefix::kMetaspaceAlways
                        : scheme == "first" ? SpacePrefix::kMetaspaceFirst
                                            : SpacePrefix::kNever;
    return;
  }
  IK_CHECK(kinds.empty(), "unsupported tokenizer.json pre-tokenizer {}", describe());
  // Llama-2 style: no pre-tokenizer; the normalizer prepends "▁" and replaces spaces.
  for (const json& n : steps_of(root.value("normalizer", json()))) {
    const std::string t = type_of(n);
    if (t == "Prepend")
      spec.space_prefix = SpacePrefix::kPrependNormalizer;
    else
      IK_CHECK(t == "Replace", "unsupported tokenizer.json normalizer {}", t);
  }
}

std::string token_text(const json& j) {  // "<s>" or {"content": "<s>", ...}
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object()) return j.value("content", "");
  return "";
}
}  // namespace

namespace {
VocabSpec read_hf_spec(const json& root, const std::string& tokenizer_json_path,
                       const std::string& tokenizer_config_path) {
  const json& model = root.at("model");
  IK_CHECK(model.value("type", "BPE") == "BPE", "unsupported tokenizer.json model type '{}'",
           model.value("type", ""));
  VocabSpec spec;
  read_pre_tokenizer(root, spec);
  spec.ignore_merges = model.value("ignore_merges", false);

  // Vocabulary and added tokens, by id.
  int64_t n = 0;
  for (const auto& [text, id] : model.at("vocab").items()) n = std::max<int64_t>(n, id.get<int64_t>() + 1);
  const json added = root.value("added_tokens", json::array());
  for (const json& a : added) n = std::max<int64_t>(n, a.at("id").get<int64_t>() + 1);
  spec.tokens.assign(n, "");
  spec.types.assign(n, kNormal);
  spec.skip_on_decode.assign(n, false);
  for (const auto& [text, id] : model.at("vocab").items()) spec.tokens[id.get<int64_t>()] = text;
  for (const json& a : added) {
    const int64_t id = a.at("id").get<int64_t>();
    const bool special = a.value("special", false);
    spec.tokens[id] = a.at("content").get<std::string>();
    spec.types[id] = special ? kControl : kUserDefined;
    spec.skip_on_decode[id] = special;
  }
  for (const json& m : model.value("merges", json::array())) {
    if (m.is_array()) {
      spec.merges.emplace_back(m.at(0).get<std::string>(), m.at(1).get<std::string>());
    } else {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ', 1);
      IK_CHECK(space != std::string::npos, "malformed merge '{}' in {}", s, tokenizer_json_path);
      spec.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    }
  }
  IK_CHECK(!spec.merges.empty(), "{} has no BPE merges", tokenizer_json_path);

  auto id_of = [&](const std::string& text) -> int32_t {
    if (text.empty()) return -1;
    for (int64_t i = 0; i < n; ++i)
      if (spec.tokens[i] == text) return static_cast<int32_t>(i);
    return -1;
  };
  if (model.contains("unk_token") && model["unk_token"].is_string())
    spec.unk = id_of(model["unk_token"].get<std::string>());

  // BOS when the post-processor's single-sequence template starts with a special token.
  const json post = root.value("post_processor", json());
  if (type_of(post) == "TemplateProcessing" && post.contains("single") &&
      !post["single"].empty() && post["single"][0].contains("SpecialToken")) {
    spec.bos = id_of(post["single"][0]["SpecialToken"].value("id", ""));
    spec.add_bos = spec.bos >= 0;
  }

  if (!tokenizer_config_path.empty()) {
    const json cfg = read_json(tokenizer_config_path);
    if (cfg.contains("bos_token")) spec.bos = id_of(token_text(cfg["bos_token"]));
    if (cfg.contains("eos_token")) spec.eos = id_of(token_text(cfg["eos_token"]));
    if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean())
      spec.add_bos = cfg["add_bos_token"].get<bool>() && spec.bos >= 0;
    const json tmpl = cfg.value("chat_template", json());
    if (tmpl.is_string()) {
      spec.chat_template = tmpl.get<std::string>();
    } else if (tmpl.is_array()) {  // [{"name": "default", "template": ...}, ...]
      for (const json& t : tmpl)
        if (t.value("name", "") == "default") spec.chat_template = t.value("template", "");
    }
  }
  // transformers >= 4.43 may save the template as its own file beside tokenizer.json.
  if (spec.chat_template.empty()) {
    const auto jinja = std::filesystem::path(tokenizer_json_path).parent_path() / "chat_template.jinja";
    if (std::filesystem::exists(jinja)) {
      std::ifstream in(jinja);
      spec.chat_template.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  return spec;
}
}  // namespace

Tokenizer Tokenizer::from_hf_json(const std::string& tokenizer_json_path,
                                  const std::string& tokenizer_config_path) {
  const json root = read_json(tokenizer_json_path);
  VocabSpec spec;
  try {
    spec = read_hf_spec(root, tokenizer_json_path, tokenizer_config_path);
  } catch (const json::exception& e) {  // a missing or mistyped field
    fail("malformed tokenizer.json '{}': {}", tokenizer_json_path, e.what());
  }
  Tokenizer tok;
  tok.impl_ = std::make_unique<Impl>(std::move(spec));
  return tok;
}

}  // namespace ik::llm
