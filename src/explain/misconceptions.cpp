#include "explain/misconceptions.hpp"

#include <sstream>

#include "core/error.hpp"

namespace ik::explain {

// Names and costs follow kach/watchat js.rkt. Prerequisites (flags assumed absent when
// diagnosing) are the reference's, plus <castsnum for the three comparison-order flags:
// someone who believes < always compares numbers never compares strings by characters,
// so no program can reveal what they believe about character order (docs/explain.md).
static const MisInfo kTable[kNumMis] = {
    {"nullobj", 10, "typeof null is \"object\", not \"null\"", "typeof null is \"null\"", 0},
    {"arrayobj", 10, "typeof of an array is \"object\", not \"array\"", "typeof [] is \"array\"", 0},
    {"naneq", 10, "NaN is never equal to anything, not even to NaN", "NaN equals NaN", 0},
    {"emptyarraytruthy", 10, "every object is truthy, even [] and {}", "[] and {} are falsy", 0},
    {"arrstrundef", 10, "undefined prints as the empty string inside an array",
     "undefined prints as \"undefined\" inside an array", bit(ArrStrBrackets)},
    {"arrstrnull", 10, "null prints as the empty string inside an array",
     "null prints as \"null\" inside an array", bit(ArrStrBrackets)},
    {"nanstrempty", 10, "NaN converts to the string \"NaN\", not to \"\"", "NaN converts to \"\"",
     bit(PlusCastNum)},
    {"nullstrempty", 10, "null converts to the string \"null\", not to \"\"", "null converts to \"\"", 0},
    {"undefstrempty", 10, "undefined converts to the string \"undefined\", not to \"\"",
     "undefined converts to \"\"", 0},
    {"obj0", 10, "{} converts to the number NaN (via \"[object Object]\"), not to 0",
     "{} converts to the number 0", 0},
    {"oneindexed", 10, "indices start at 0, not at 1", "indices start at 1", 0},
    {"undef0", 10, "undefined converts to the number NaN, not to 0", "undefined converts to 0", 0},
    {"nullnan", 10, "null converts to the number 0, not to NaN", "null converts to NaN", 0},
    {"sortraw", 10, "sort() without a comparator compares the elements' string forms, so 10 sorts before 9",
     "sort() compares elements with <", bit(LtCastsNum)},
    {"??false", 10, "?? only replaces null and undefined, not false", "?? also replaces false", 0},
    {"??nan", 10, "?? only replaces null and undefined, not NaN", "?? also replaces NaN", 0},
    {"+arrcat", 5, "+ does not concatenate arrays; it converts them to strings first",
     "array + array concatenates the arrays", 0},
    {"boolopsbool", 10, "&& and || return one of their operands, not a boolean", "&& and || return a boolean", 0},
    {"==strict", 10, "== converts its operands when their types differ; it is not ===", "== is ===", 0},
    {"+semistrict", 15, "+ converts operands that are not numbers or strings instead of throwing",
     "+ throws a TypeError unless both operands are numbers or strings", 0},
    {"objstr", 10, "a plain object converts to the string \"[object Object]\"",
     "a plain object converts to its literal text", 0},
    {"arrstrbrackets", 10, "an array converts to a string by joining its elements with commas, without brackets",
     "an array converts to a string with brackets", 0},
    {"emptystringnan", 10, "the empty string converts to the number 0, not to NaN", "\"\" converts to NaN", 0},
    {"+castnum", 10, "+ concatenates as soon as either operand is a string",
     "+ adds numerically unless both operands are strings", 0},
    {"noimplicitobjification", 10, "numbers and booleans are boxed when subscripted, so x[k] gives undefined",
     "subscripting a number or boolean throws", 0},
    {"==boolcoerce", 10, "in ==, a boolean operand is converted to a number (true is 1, false is 0)",
     "in ==, the other operand is converted to a boolean", bit(EqStrict)},
    {">=is>or==", 10, "a >= b means not (a < b), and a <= b means not (b < a); it is not (a > b || a == b)",
     "a >= b means a > b || a == b", bit(LtCastsNum)},
    {"<castsnum", 10, "< compares two strings alphabetically (by character code), not as numbers",
     "< always compares numbers", 0},
    {"asciiopenshut", 1, "'[' and ']' come after the capital letters and before the small letters in character order",
     "'[' and ']' come before all letters", bit(LtCastsNum)},
    {"asciicomma", 10, "',' comes before the digits and letters in character order",
     "',' comes after the digits and letters", bit(LtCastsNum)},
    {"structuralequality", 10, "objects and arrays are equal only if they are the same object, not if they look alike",
     "objects with equal contents are equal", 0},
    {"indexraw", 10, "an index is converted to a string key first, so x[\"1\"] is x[1]",
     "only number indices select elements", 0},
};

const MisInfo& mis_info(int m) { return kTable[m]; }

int mask_cost(Mask mask) {
  int c = 0;
  for (int m = 0; m < kNumMis; m++)
    if (mask & bit(m)) c += kTable[m].cost;
  return c;
}

std::string mask_names(Mask mask) {
  if (!mask) return "standard";
  std::string out;
  for (int m = 0; m < kNumMis; m++)
    if (mask & bit(m)) out += (out.empty() ? "" : "+") + std::string(kTable[m].name);
  return out;
}

int parse_mis(const std::string& name) {
  for (int m = 0; m < kNumMis; m++)
    if (name == kTable[m].name) return m;
  std::string all;
  for (int m = 0; m < kNumMis; m++) all += (m ? ", " : "") + std::string(kTable[m].name);
  fail("unknown misconception '{}' (known: {})", name, all);
}

Mask parse_mask(const std::string& names) {
  if (names.empty() || names == "standard") return 0;
  Mask mask = 0;
  std::stringstream ss(names);
  std::string part;
  while (std::getline(ss, part, ',')) mask |= bit(parse_mis(part));
  return mask;
}

}  // namespace ik::explain
