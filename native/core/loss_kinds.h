// The one list of loss kinds. Everything that depends on "which loss" comes from this table: the
// LossKind enum, the predicates below, the kind count the addon reports (abi() in the binding) and
// which lib/plan.ts's constants are checked against when the addon loads.
//
// Each backend dispatches over LossKind with a `switch` that names every kind and has no `default`;
// the build uses -Werror=switch, so a kind added here and forgotten by a backend fails to compile
// instead of silently computing another loss.
//
// Columns:
//   id         the value across the JS/C++ boundary (never reused)
//   Name       LossKind::Name
//   family     Row: one output per row from a softmax over the row's C logits (math: row terms);
//              Element: one output per logit (math: element terms)
//   index      takes class-index targets (element losses: one-hot rows)
//   probs      takes per-element float targets (row losses: probabilities per row)
//   ignore     ignore_index applies (ignored rows: no loss, zero gradient, not counted by 'mean')
//   smoothing  label smoothing applies (a per-class target term in the row's gradient)
//   vectors    per-class vectors it reads (LossVector flags); 2-value pairs for the binary focal loss
//   scalars    Problem scalars it reads (LossScalar flags)
#pragma once

#include <cstdint>

namespace cbloss {

enum class LossFamily : int32_t { Row = 0, Element = 1 };

// Per-class vectors of a Problem.
enum LossVector : uint32_t {
  kNoVectors = 0,
  kClassWeight = 1u << 0,  // `weight`
  kPosWeight = 1u << 1,    // BCE `posWeight`
  kAlphaVector = 1u << 2,  // focal alpha per class (binary focal: [alpha_0, alpha_1])
};

// Scalars of a Problem.
enum LossScalar : uint32_t {
  kNoScalars = 0,
  kAlphaScalar = 1u << 0,
  kGamma = 1u << 1,
  kLabelSmoothing = 1u << 2,
  kPolyEpsilon = 1u << 3,
  kAsymmetric = 1u << 4,  // gamma_pos, gamma_neg, clip, detach_focusing
  kLogitMaps = 1u << 5,   // logit_bias, margin, logit_scale (docs/semantics.md, "Logit maps")
};

// X(id, Name, family, index, probs, ignore, smoothing, vectors, scalars)
#define CBLOSS_LOSS_KINDS(X)                                                                                    \
  X(0, CrossEntropy, Row, true, true, true, true, kClassWeight, kLabelSmoothing | kLogitMaps)                   \
  X(1, BCEWithLogits, Element, true, true, false, false, kClassWeight | kPosWeight, kNoScalars)                 \
  X(2, FocalSoftmax, Row, true, false, false, false, kAlphaVector, kAlphaScalar | kGamma | kLogitMaps)          \
  X(3, FocalBinary, Element, false, true, false, false, kAlphaVector, kAlphaScalar | kGamma)                    \
  X(4, SigmoidFocal, Element, true, true, false, false, kNoVectors, kAlphaScalar | kGamma)                      \
  X(5, Poly, Row, true, false, true, false, kNoVectors, kPolyEpsilon)                                           \
  X(6, Asymmetric, Element, true, true, false, false, kNoVectors, kAsymmetric)

enum class LossKind : int32_t {
#define CBLOSS_KIND_ENUM(id, Name, ...) Name = id,
  CBLOSS_LOSS_KINDS(CBLOSS_KIND_ENUM)
#undef CBLOSS_KIND_ENUM
};

struct LossTraits {
  int32_t id;
  const char* name;
  LossFamily family;
  bool index_targets;
  bool prob_targets;
  bool ignore_index;
  bool label_smoothing;
  uint32_t vectors;
  uint32_t scalars;
};

#if defined(__CUDACC__)
#define CBLOSS_KIND_HD __host__ __device__ __forceinline__
#else
#define CBLOSS_KIND_HD inline
#endif

// A kind's row of the table, by a switch (constexpr, and usable in device code, which cannot read a
// host array); the predicates read it.
CBLOSS_KIND_HD constexpr LossTraits traits_of(LossKind k) {
  switch (k) {
#define CBLOSS_KIND_CASE(id, Name, family, index, probs, ignore, smoothing, vectors, scalars) \
  case LossKind::Name:                                                                      \
    return {id, #Name, LossFamily::family, index, probs, ignore, smoothing, vectors, scalars};
    CBLOSS_LOSS_KINDS(CBLOSS_KIND_CASE)
#undef CBLOSS_KIND_CASE
  }
  return {-1, "", LossFamily::Row, false, false, false, false, kNoVectors, kNoScalars};
}

// The table, in id order (ids are 0, 1, 2, ...: checked below), for host code that lists the kinds.
constexpr LossTraits kLossTraits[] = {
#define CBLOSS_KIND_ROW(id, Name, ...) traits_of(LossKind::Name),
    CBLOSS_LOSS_KINDS(CBLOSS_KIND_ROW)
#undef CBLOSS_KIND_ROW
};

constexpr int32_t kLossKindCount = static_cast<int32_t>(sizeof(kLossTraits) / sizeof(kLossTraits[0]));

constexpr bool ids_are_dense() {
  for (int32_t i = 0; i < kLossKindCount; ++i) {
    if (kLossTraits[i].id != i) return false;
  }
  return true;
}
static_assert(ids_are_dense(), "loss kind ids must be 0, 1, 2, ... in table order");
static_assert(kLossKindCount == 7, "a new loss kind: update every switch over LossKind (the build says where)");

// (Host code: the table itself.)
constexpr const LossTraits& loss_traits(LossKind k) { return kLossTraits[static_cast<int32_t>(k)]; }

CBLOSS_KIND_HD constexpr bool is_row_loss(LossKind k) { return traits_of(k).family == LossFamily::Row; }
CBLOSS_KIND_HD constexpr bool uses_ignore_index(LossKind k) { return traits_of(k).ignore_index; }
CBLOSS_KIND_HD constexpr bool takes_logit_maps(LossKind k) { return (traits_of(k).scalars & kLogitMaps) != 0; }
// The binary focal loss reads its per-class vectors (alpha, class-balanced weights) as pairs
// [t = 0, t = 1]; every other kind reads C values.
CBLOSS_KIND_HD constexpr bool reads_target_pairs(LossKind k) { return k == LossKind::FocalBinary; }

}  // namespace cbloss
