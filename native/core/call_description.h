// A call, declared once: the scalars of the config array and the arrays of run/runAsync, in the order
// lib/native.ts passes them. Everything else expands from these two lists: the Problem's members
// (problem.h), the binding's contract and the addon's abi() (binding/contract.h), the reads and checks
// of the arguments (binding/call.cpp), the async call's pinned blocks (binding/run.cpp), the overlap
// checks of device buffers and the names the CUDA traffic accounting gives the buffers
// (cuda/losses_cuda.cu). lib/native.ts checks its own lists against abi() when it loads the addon, and
// TypeScript checks each use of them there (docs/architecture.md, "Adding a per-call option").
#pragma once

// CBLOSS_CONFIG_SLOTS(CHECKED, REAL, FLAG): the config Float64Array's slots, in order.
//   CHECKED(slot): read by the binding with its own range check (enums, sizes, the device);
//   REAL(slot, member, default): a double copied as it is into `double Problem::member = default`;
//   FLAG(slot, member): 0 or 1, into `bool Problem::member = false`.
#define CBLOSS_CONFIG_SLOTS(CHECKED, REAL, FLAG)                                                          \
  CHECKED(kind)      /* cbloss::LossKind (loss_kinds.h) */                                               \
  CHECKED(rows)                                                                                         \
  CHECKED(classes)                                                                                      \
  CHECKED(divisor)   /* cbloss::Divisor */                                                               \
  CHECKED(balance)   /* cbloss::Balance */                                                               \
  REAL(alphaScalar, alpha_scalar, 1.0)           /* focal alpha; SigmoidFocal: < 0 disables alpha_t */  \
  REAL(gamma, gamma, 0.0)                        /* focal gamma */                                       \
  REAL(labelSmoothing, label_smoothing, 0.0)                                                            \
  CHECKED(ignoreIndex) /* kinds with uses_ignore_index (CrossEntropy, Poly) */                           \
  REAL(gradOutputScalar, grad_output_scalar, 1.0) /* the upstream gradient of a reduced loss */          \
  CHECKED(device)    /* -1: the CPU; N >= 0: CUDA device N */                                            \
  CHECKED(logitType) /* cbloss::LogitType (16-bit types only with device buffers) */                     \
  REAL(polyEpsilon, poly_epsilon, 1.0)           /* Poly: the weight of (1 - s_y) */                     \
  REAL(gammaPos, gamma_pos, 1.0)                 /* Asymmetric: focusing of the positive term */         \
  REAL(gammaNeg, gamma_neg, 4.0)                 /* Asymmetric: focusing of the negative term */         \
  REAL(clip, clip, 0.05)                         /* Asymmetric: probability shift of the negative term */ \
  FLAG(detachFocusing, detach_focusing)          /* Asymmetric: the focusing factor held constant */     \
  REAL(logitScale, logit_scale, 1.0)             /* docs/semantics.md, logit maps: s (1: none) */        \
  REAL(avgFactor, avg_factor, 0.0)               /* docs/semantics.md, per-call options (0: none) */     \
  FLAG(sampleWeightPerElement, sample_weight_per_element) /* element kinds: a sample weight a logit */  \
  FLAG(divisorOnly, divisor_only)                /* Loss.divisor: no logits or outputs; run returns the divisor */

// CBLOSS_CALL_ARRAYS(X): the arrays of run/runAsync after the config, in order, as
//   X(argument, Problem member, element type, extent, kind, presence, traffic name)
//   extent (CallExtent, problem.h): how many elements the array has;
//   kind (CallArrayKind): DataIn / DataOut — the call's data: host typed arrays, or device buffers
//     (Problem::device_memory) on the call's device; Option — a loss's own vector, a host
//     Float64Array either way (CUDA copies the options to the device as floats, "parameters");
//   presence: Required or Optional (null or undefined);
//   traffic name: the buffer's name in the CUDA traffic accounting (CBLOSS_EMULATED_TRAFFIC).
// A logit-type array (LogitElements) holds floats, or the 16-bit patterns of Problem::logit_type.
#define CBLOSS_CALL_ARRAYS(X)                                                                              \
  X(logits, logits, const float, LogitElements, DataIn, Required, "logits")                                \
  X(labels, labels, const int32_t, Rows, DataIn, Optional, "labels")       /* class indices or ignore_index */ \
  X(targets, targets, const float, Elements, DataIn, Optional, "targets")  /* probabilities / 0-1 targets */ \
  X(classWeight, class_weight, const double, Classes, Option, Optional, "parameters")    /* `weight` */       \
  X(posWeight, pos_weight, const double, Classes, Option, Optional, "parameters")       /* BCE posWeight */  \
  X(alpha, alpha, const double, ClassesOrPair, Option, Optional, "parameters")          /* focal alpha */    \
  X(balanceWeight, balance_weight, const double, ClassesOrPair, Option, Optional, "parameters") /* normalized class-balanced weights */ \
  X(logitBias, logit_bias, const double, Classes, Option, Optional, "parameters")       /* logit maps: b */  \
  X(margin, margin, const double, Classes, Option, Optional, "parameters")              /* logit maps: m */  \
  X(sampleWeight, sample_weight, const float, SampleWeights, DataIn, Optional, "sample weights")              \
  X(gradOutput, grad_output, const float, Outputs, DataIn, Optional, "upstream gradient") /* reduction 'none' */ \
  X(lossOut, loss_out, float, Outputs, DataOut, Optional, "losses")                     /* reduction 'none' */ \
  X(gradOut, grad_out, float, LogitElements, DataOut, Optional, "gradient")  /* null: forward only; may be the logits */

// CBLOSS_WHEN_DATA_IN(kind, tokens...): the tokens for the call's data inputs (kind DataIn), nothing
// for the others — a list over the inputs alone, for code that handles only those (CUDA's chunked
// staging of host arrays).
#define CBLOSS_WHEN_DATA_IN(kind, ...) CBLOSS_WHEN_DATA_IN_##kind(__VA_ARGS__)
#define CBLOSS_WHEN_DATA_IN_DataIn(...) __VA_ARGS__
#define CBLOSS_WHEN_DATA_IN_DataOut(...)
#define CBLOSS_WHEN_DATA_IN_Option(...)
