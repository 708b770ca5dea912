// The native calling contract between lib/native.ts and the binding, declared once: the slots of the
// config Float64Array and the arguments of run/runAsync, in order. The addon reports them with the loss
// kinds (abi()), and lib/native.ts compares them with its own lists when it loads the addon, so that a
// build from other sources is refused with a clear message instead of misreading its arguments.
#pragma once

// X(name): the config slots (every value a double).
#define CBLOSS_CONFIG_SLOTS(X)                                                  \
  X(kind)            /* cbloss::LossKind (loss_kinds.h) */                     \
  X(rows)                                                                      \
  X(classes)                                                                   \
  X(divisor)         /* cbloss::Divisor */                                     \
  X(balance)         /* cbloss::Balance */                                     \
  X(alphaScalar)                                                               \
  X(gamma)                                                                     \
  X(labelSmoothing)                                                            \
  X(ignoreIndex)                                                               \
  X(gradOutputScalar)                                                          \
  X(device)          /* -1: the CPU; N >= 0: CUDA device N */                  \
  X(logitType)       /* cbloss::LogitType (16-bit types only with device buffers) */ \
  X(polyEpsilon)                                                               \
  X(gammaPos)                                                                  \
  X(gammaNeg)                                                                  \
  X(clip)                                                                      \
  X(detachFocusing)  /* 0 or 1 */                                             \
  X(logitScale)      /* SPEC §3.6 scale (1: none) */                           \
  X(avgFactor)       /* SPEC §3.7 (0: none) */                                 \
  X(sampleWeightPerElement) /* 0: one sample weight per row; 1: per logit */

// X(name): the arguments of run and runAsync after the config.
#define CBLOSS_RUN_ARGUMENTS(X) \
  X(config)                     \
  X(logits)                     \
  X(labels)                     \
  X(targets)                    \
  X(classWeight)                \
  X(posWeight)                  \
  X(alpha)                      \
  X(balanceWeight)              \
  X(logitBias)                  \
  X(margin)                     \
  X(sampleWeight)               \
  X(gradOutput)                 \
  X(lossOut)                    \
  X(gradOut)

namespace cbloss {
namespace contract {

enum ConfigSlot : int {
#define CBLOSS_SLOT_ENUM(name) kSlot_##name,
  CBLOSS_CONFIG_SLOTS(CBLOSS_SLOT_ENUM)
#undef CBLOSS_SLOT_ENUM
  kConfigSize
};

enum RunArgument : int {
#define CBLOSS_ARG_ENUM(name) kArg_##name,
  CBLOSS_RUN_ARGUMENTS(CBLOSS_ARG_ENUM)
#undef CBLOSS_ARG_ENUM
  kRunArgs
};

constexpr const char* kConfigSlotNames[] = {
#define CBLOSS_SLOT_NAME(name) #name,
    CBLOSS_CONFIG_SLOTS(CBLOSS_SLOT_NAME)
#undef CBLOSS_SLOT_NAME
};

constexpr const char* kRunArgumentNames[] = {
#define CBLOSS_ARG_NAME(name) #name,
    CBLOSS_RUN_ARGUMENTS(CBLOSS_ARG_NAME)
#undef CBLOSS_ARG_NAME
};

}  // namespace contract
}  // namespace cbloss
