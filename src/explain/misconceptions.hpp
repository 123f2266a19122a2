#pragma once
// The 32 misconceptions of WatChatJS (docs/explain.md; prob.md section 5a). Each is a flag
// that switches one semantic rule of the interpreter to a plausible wrong rule. A set of
// flags is a 32-bit mask; its cost is the sum of the flags' costs.
#include <cstdint>
#include <string>

namespace ik::explain {

enum Mis : int {
  NullObj, ArrayObj, NanEq, EmptyArrayTruthy, ArrStrUndef, ArrStrNull, NanStrEmpty,
  NullStrEmpty, UndefStrEmpty, Obj0, OneIndexed, Undef0, NullNan, SortRaw, CoalesceFalse,
  CoalesceNan, PlusArrCat, BoolOpsBool, EqStrict, PlusSemiStrict, ObjStr, ArrStrBrackets,
  EmptyStringNan, PlusCastNum, NoImplicitObjification, EqBoolCoerce, GeIsGtOrEq, LtCastsNum,
  AsciiOpenShut, AsciiComma, StructuralEquality, IndexRaw, kNumMis
};

using Mask = uint32_t;
inline constexpr Mask bit(int m) { return Mask(1) << m; }

struct MisInfo {
  const char* name;   // short name, as in the reference (e.g. "nullobj")
  int cost;
  const char* fact;   // the correct fact, as the explanation states it
  const char* wrong;  // the wrong rule the flag simulates
  Mask prereqs;       // flags assumed absent when diagnosing this one
};

const MisInfo& mis_info(int m);
int mask_cost(Mask mask);
std::string mask_names(Mask mask);  // "nullobj+naneq" ("standard" for 0)
// Parses a misconception name; throws ik::Error listing the valid names otherwise.
int parse_mis(const std::string& name);
// Parses "a,b,c" (or "" / "standard") into a mask.
Mask parse_mask(const std::string& names);

}  // namespace ik::explain
