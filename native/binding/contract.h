// The native calling contract between lib/native.ts and the binding: the slots of the config
// Float64Array and the arguments of run/runAsync, in order, as core/call_description.h declares them.
// The addon reports them with the loss kinds (abi()), and lib/native.ts compares them with its own lists
// when it loads the addon, so that a build from other sources is refused with a clear message instead
// of misreading its arguments.
#pragma once

#include "../core/call_description.h"

namespace cbloss {
namespace contract {

// (CHECKED slots have one field, the others more: a macro of each shape.)
#define CBLOSS_SLOT_ENUM(slot) kSlot_##slot,
#define CBLOSS_SLOT_ENUM_N(slot, ...) kSlot_##slot,
enum ConfigSlot : int { CBLOSS_CONFIG_SLOTS(CBLOSS_SLOT_ENUM, CBLOSS_SLOT_ENUM_N, CBLOSS_SLOT_ENUM_N) kConfigSize };
#undef CBLOSS_SLOT_ENUM
#undef CBLOSS_SLOT_ENUM_N

#define CBLOSS_ARG_ENUM(argument, ...) kArg_##argument,
enum RunArgument : int { kArg_config, CBLOSS_CALL_ARRAYS(CBLOSS_ARG_ENUM) kRunArgs };
#undef CBLOSS_ARG_ENUM

#define CBLOSS_SLOT_NAME(slot) #slot,
#define CBLOSS_SLOT_NAME_N(slot, ...) #slot,
constexpr const char* kConfigSlotNames[] = {CBLOSS_CONFIG_SLOTS(CBLOSS_SLOT_NAME, CBLOSS_SLOT_NAME_N, CBLOSS_SLOT_NAME_N)};
#undef CBLOSS_SLOT_NAME
#undef CBLOSS_SLOT_NAME_N

#define CBLOSS_ARG_NAME(argument, ...) #argument,
constexpr const char* kRunArgumentNames[] = {"config", CBLOSS_CALL_ARRAYS(CBLOSS_ARG_NAME)};
#undef CBLOSS_ARG_NAME

}  // namespace contract
}  // namespace cbloss
