// Chat templates against transformers' Jinja rendering of the real templates
// (fixtures/chat_templates.json).
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "fixtures.hpp"
#include "llm/tokenizer/chat_template.hpp"

namespace ik::llm {
namespace {

std::vector<ChatMessage> messages_of(const nlohmann::json& j) {
  std::vector<ChatMessage> out;
  for (const auto& m : j) out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  return out;
}

TEST(ChatTemplate, MatchesTransformersJinja) {
  const auto fx = testing::read_fixture("chat_templates.json");
  ASSERT_EQ(fx.size(), 5u);
  int checked = 0;
  for (const auto& t : fx) {
    const std::string tmpl = t["template"], bos = t["bos"], eos = t["eos"];
    for (const auto& c : t["cases"]) {
      const std::string got = render_chat_template(tmpl, messages_of(c["messages"]),
                                                   c["add_generation_prompt"], bos, eos);
      EXPECT_EQ(got, c["expected"].get<std::string>()) << t["name"];
      ++checked;
    }
  }
  EXPECT_EQ(checked, 40);
}

TEST(ChatTemplate, DetectsFamilies) {
  const auto fx = testing::read_fixture("chat_templates.json");
  std::map<std::string, std::string> family;
  for (const auto& t : fx)
    family[t["name"]] = chat_family_name(detect_chat_family(t["template"]));
  EXPECT_EQ(family["smollm2"], "chatml");
  EXPECT_EQ(family["chatml"], "chatml");
  EXPECT_EQ(family["llama2"], "llama2");
  EXPECT_EQ(family["llama3"], "llama3");
  EXPECT_EQ(family["tinyllama"], "zephyr");
  EXPECT_EQ(chat_family_name(detect_chat_family("")), std::string("chatml"));
}

TEST(ChatTemplate, SmolLM2DefaultSystemPrompt) {
  const auto fx = testing::read_fixture("chat_templates.json");
  EXPECT_EQ(chatml_default_system(fx[0]["template"]),
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  EXPECT_EQ(chatml_default_system(fx[1]["template"]), "");
}

TEST(ChatTemplate, Llama2RejectsNonAlternatingRoles) {
  const auto fx = testing::read_fixture("chat_templates.json");
  const std::vector<ChatMessage> bad = {{"user", "a"}, {"user", "b"}};
  EXPECT_THROW(render_chat_template(fx[2]["template"], bad, true, "<s>", "</s>"), ik::Error);
}

}  // namespace
}  // namespace ik::llm

namespace ik::llm {
namespace {

TEST(ChatTemplate, TrimsLikePythonStrip) {
  // Jinja's |trim is Python's str.strip(): NBSP, ideographic space and U+001F are spaces.
  const auto fx = testing::read_fixture("chat_templates.json");
  const std::string got = render_chat_template(
      fx[3]["template"], {{"user", "\u00a0 hi\u3000there \u3000\x1f"}}, false, "<B>", "<E>");
  EXPECT_EQ(got, "<B><|start_header_id|>user<|end_header_id|>\n\nhi\u3000there<|eot_id|>");
}

}  // namespace
}  // namespace ik::llm
