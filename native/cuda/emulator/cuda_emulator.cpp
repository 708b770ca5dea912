// The CPU emulator of CUDA declared in cuda_emulator.h (test builds only).
#include "cuda_emulator.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

// Streams run lazily: what is enqueued on a stream (an asynchronous copy or memset, a wait for an
// event) runs only when something waits for it — cudaStreamSynchronize, cudaEventSynchronize, a
// stream that waits for an event of this one and runs itself, cudaFree/cudaFreeHost (which
// synchronize the device), or a kernel launched on the stream, which runs at once after what was
// queued before it — in stream order. So a host read of results, or a host write into a buffer that
// a queued copy has still to send, without the synchronization CUDA requires sees the wrong bytes,
// and so does a kernel that needs another stream's copy without an event between them, as they may
// on a GPU. The default stream (null) runs what it is given at once.
struct CUstream_st {
  std::deque<std::function<void()>> ops;
  uint64_t enqueued = 0;  // operations ever enqueued
  uint64_t done = 0;      // operations run
};

struct CUevent_st {
  CUstream_st* stream = nullptr;  // the stream it was last recorded on (null: nothing to wait for)
  uint64_t mark = 0;              // its operations up to the record
};

namespace cbloss_emu {
namespace {

constexpr size_t kFiberStack = 128 * 1024;
constexpr int kDevices = 2;  // two, so that the multi-device paths run too

enum class FiberState { Ready, AtWarpSync, AtBlockSync, AtClusterSync, Done };

// How often a thread has accessed global memory from one site since its warp's last shuffle or barrier
// (traffic accounting): its n-th access there belongs to the warp's n-th instruction there.
struct SiteCount {
  const char* file;
  int line;
  bool store;
  unsigned count;
};

struct Fiber {
  ucontext_t context;
  std::unique_ptr<char[]> stack;  // uninitialized: its pages are committed only as far as the thread uses them
  FiberState state = FiberState::Ready;
  unsigned generation = 0;  // shuffles done: selects the half of the exchange buffer
  unsigned epoch = 0;       // shuffles and barriers passed (traffic accounting)
  std::vector<SiteCount> site_counts;
  Coordinates where;
};

// One lane's global access, as the traffic accounting records it until its block ends.
struct Access {
  const std::string* buffer;  // the name of the buffer it falls in (traffic accounting)
  uint32_t thread;
  uint32_t epoch;
  const char* file;
  int line;
  uint32_t instance;
  bool store;
  uint32_t bytes;
  uintptr_t address;
};

// A block being run. Launches hold launch_mutex(), so one block runs at a time in the process; the
// blocks of a cluster take turns, each running until all its threads wait at the cluster barrier.
struct BlockRun {
  std::vector<Fiber> fibers;  // grown once, reused by every block
  size_t count = 0;           // threads of this block
  size_t current = 0;
  ucontext_t scheduler;
  std::vector<uint64_t> exchange;  // [warp][generation & 1][lane]
  const std::function<void()>* body = nullptr;
  dim3 block;
  dim3 grid;
  unsigned cluster_rank = 0;
  size_t shared_bytes = 0;            // dynamic shared memory of the launch
  size_t shared_allowance = 0;        // static and dynamic shared memory a block of the launch may have
  std::vector<unsigned char> shared;  // this block's
  std::vector<const void*> static_arrays;  // the static shared arrays this block reached
  size_t static_shared = 0;                // their bytes
  uint64_t serial = 0;                // which block execution this is (CBLOSS_BLOCK_SHARED)
  std::vector<Access> accesses;       // traffic accounting: this block's, until it ends
};

// Counts block executions process-wide (from 1: a static shared array's stamp starts at 0).
uint64_t next_block_serial() {
  static uint64_t serial = 0;
  return ++serial;
}

// The block of plain launches; a cluster launch points running() at its blocks in turn.
BlockRun& single_run() {
  static BlockRun run;
  return run;
}

BlockRun*& running() {
  static BlockRun* now = &single_run();
  return now;
}

BlockRun& run_state() { return *running(); }

std::recursive_mutex& launch_mutex() {
  static auto* m = new std::recursive_mutex;  // (immortal, as the heaps)
  return *m;
}

[[noreturn]] void emulator_fault(const char* what) {
  std::fprintf(stderr, "cbloss CUDA emulator: %s\n", what);
  std::abort();
}

void fiber_main() {
  BlockRun& run = run_state();
  (*run.body)();
  run.fibers[run.current].state = FiberState::Done;
  // Returning resumes uc_link, the scheduler.
}

// Suspends the running fiber in `state` until the scheduler releases it.
void suspend(FiberState state) {
  BlockRun& run = run_state();
  Fiber& self = run.fibers[run.current];
  self.state = state;
  self.epoch++;  // a shuffle or a barrier: the warp's accesses after it are new instructions
  self.site_counts.clear();
  swapcontext(&self.context, &run.scheduler);
}

// CBLOSS_EMULATED_SCHEDULE picks the order of what a GPU runs in no fixed order:
//   * index (the default): threads and blocks in index order; a kernel runs at launch (host_wait).
//   * reverse: threads and blocks in reverse order, and streams too (host_wait). In index order, a
//     thread that reads shared memory written by a lower thread in the same phase (a missing
//     __syncthreads) still sees the value, because the writer ran first; in reverse order it does
//     not. Running the tests both ways catches a missing barrier in either direction, which a CPU
//     emulator otherwise hides.
//   * shuffle: threads and blocks in index order, streams in an order drawn at random at every host
//     wait (host_wait), from the seed CBLOSS_EMULATED_SEED (default 1): the same run each time.
enum class Schedule { Index, Reverse, Shuffle };

Schedule schedule() {
  static const Schedule chosen = [] {
    const char* env = std::getenv("CBLOSS_EMULATED_SCHEDULE");
    const std::string name = env ? env : "index";
    if (name == "index") return Schedule::Index;
    if (name == "reverse") return Schedule::Reverse;
    if (name == "shuffle") return Schedule::Shuffle;
    emulator_fault("CBLOSS_EMULATED_SCHEDULE is none of index, reverse, shuffle");
  }();
  return chosen;
}

bool reverse_schedule() { return schedule() == Schedule::Reverse; }

// Bytes past the block's dynamic shared memory, set to kGuardByte when it starts: one changed when it
// ends is a write past the end (on a GPU, into another block's shared memory, or a fault).
constexpr size_t kSharedGuard = 256;
constexpr unsigned char kGuardByte = 0xa5;

// Makes the block's threads, ready to start.
void start_block(BlockRun& run) {
  const size_t n = run.count;
  if (run.fibers.size() < n) run.fibers.resize(n);
  run.exchange.assign(((n + 31) / 32) * 64, 0);
  run.serial = next_block_serial();
  run.shared.assign(run.shared_bytes + kSharedGuard, kGuardByte);
  std::memset(run.shared.data(), 0xff, run.shared_bytes);
  run.static_arrays.clear();
  run.static_shared = 0;
  for (size_t i = 0; i < n; ++i) {
    Fiber& f = run.fibers[i];
    if (!f.stack) f.stack.reset(new char[kFiberStack]);
    f.state = FiberState::Ready;
    f.generation = 0;
    f.epoch = 0;
    f.site_counts.clear();
    f.where.thread = dim3(static_cast<unsigned>(i % run.block.x), static_cast<unsigned>(i / run.block.x), 1);
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = f.stack.get();
    f.context.uc_stack.ss_size = kFiberStack;
    f.context.uc_link = &run.scheduler;
    makecontext(&f.context, fiber_main, 0);
  }
}

// Runs the block until every thread has returned or waits at the cluster barrier.
void run_phase(BlockRun& run) {
  const size_t n = run.count;
  // Warps run one after another, each as far as it can go — through its shuffles, up to its next
  // __syncthreads — before the next warp starts: the most skew between warps that CUDA allows, so
  // that a warp racing ahead into the next phase (a missing barrier before shared memory is reused)
  // overwrites what a later warp still had to read.
  const bool reverse = reverse_schedule();
  const size_t warps = (n + 31) / 32;
  for (;;) {
    for (size_t k = 0; k < warps; ++k) {
      const size_t warp = reverse ? warps - 1 - k : k;
      const size_t begin = warp * 32, end = begin + 32 < n ? begin + 32 : n;
      for (;;) {
        for (size_t j = 0; j < end - begin; ++j) {
          const size_t i = reverse ? end - 1 - j : begin + j;
          if (run.fibers[i].state != FiberState::Ready) continue;
          run.current = i;
          swapcontext(&run.scheduler, &run.fibers[i].context);
        }
        // The whole warp at a shuffle: exchange and go on; otherwise it waits at a barrier.
        bool whole = true;
        for (size_t i = begin; i < end; ++i) whole = whole && run.fibers[i].state == FiberState::AtWarpSync;
        if (!whole) break;
        for (size_t i = begin; i < end; ++i) run.fibers[i].state = FiberState::Ready;
      }
    }
    bool phase_over = true, all_at_block_sync = true;
    for (size_t i = 0; i < n; ++i) {
      const FiberState s = run.fibers[i].state;
      phase_over = phase_over && (s == FiberState::Done || s == FiberState::AtClusterSync);
      all_at_block_sync = all_at_block_sync && (s == FiberState::AtBlockSync || s == FiberState::Done);
    }
    if (phase_over) return;
    if (!all_at_block_sync) {
      emulator_fault("a warp shuffle or barrier that not every thread reaches (divergence or an exited thread)");
    }
    bool any_waiting = false;
    for (size_t i = 0; i < n; ++i) {
      if (run.fibers[i].state == FiberState::AtBlockSync) {
        run.fibers[i].state = FiberState::Ready;
        any_waiting = true;
      }
    }
    if (!any_waiting) emulator_fault("scheduler stalled");
  }
}

// After a block: nothing written past its dynamic shared memory, and its static and dynamic shared memory
// together within what a GPU gives a block of the kernel (48 KB, unless the kernel's dynamic limit was
// raised: then up to 227 KB), which a GPU checks at the launch (it refuses one that asks for more).
void check_shared_guard(const BlockRun& run) {
  for (size_t i = run.shared_bytes; i < run.shared.size(); ++i) {
    if (run.shared[i] != kGuardByte) emulator_fault("a write past the end of the block's dynamic shared memory");
  }
  if (run.static_shared + run.shared_bytes > run.shared_allowance) {
    std::fprintf(stderr, "cbloss CUDA emulator: %zu bytes of static and %zu of dynamic shared memory a block, %zu allowed\n",
                 run.static_shared, run.shared_bytes, run.shared_allowance);
    emulator_fault("more shared memory than the GPU gives the kernel's blocks (a launch a GPU refuses)");
  }
}

void run_block(BlockRun& run) {
  start_block(run);
  run_phase(run);
  check_shared_guard(run);
  for (size_t i = 0; i < run.count; ++i) {
    if (run.fibers[i].state != FiberState::Done) emulator_fault("a cluster barrier in a launch without clusters");
  }
}

// Device memory, and pinned host memory: host allocations with a byte budget each (1 GiB, or the
// environment variable's value), so that running out of either can be tested — and a leak shows.
// Every block lies between two inaccessible pages and ends where the second begins (rounded to the
// 256-byte alignment cudaMalloc gives): a kernel (or host code) that reads or writes past the end of
// an array faults at once (SIGSEGV) instead of using another buffer's bytes. The bytes around the
// block on its own pages (up to 255 after it) hold a canary, checked after every launch and when the
// block is freed, so that a write just past either end shows too.
constexpr size_t kDeviceAlignment = 256;
constexpr unsigned char kCanary = 0xa5;

struct GuardedBlock {
  char* map;        // the mapping: guard page, the block's pages, guard page
  size_t map_bytes;
  size_t bytes;     // what was asked for
};

size_t page_bytes() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// CBLOSS_EMULATED_TRAFFIC_PLAN=1: launches are recorded (traffic accounting) but run no block, and
// device memory is left uncommitted (no canaries to write or check), so that a full-size problem's
// launches come out without its memory or time.
bool plan_only() {
  static const bool on = [] {
    const char* env = std::getenv("CBLOSS_EMULATED_TRAFFIC_PLAN");
    return env && std::string(env) == "1";
  }();
  return on;
}

struct DeviceHeap {
  std::mutex mutex;
  std::unordered_map<void*, GuardedBlock> blocks;
  size_t used = 0;
  size_t budget = 0;
  explicit DeviceHeap(const char* budget_variable) {
    const char* env = std::getenv(budget_variable);
    budget = env ? static_cast<size_t>(std::strtoull(env, nullptr, 10)) : (size_t{1} << 30);
  }

  cudaError_t allocate(void** ptr, size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex);
    *ptr = nullptr;
    if (bytes > budget - used) return cudaErrorMemoryAllocation;
    const size_t page = page_bytes();
    const size_t span = round_up(bytes == 0 ? 1 : bytes, kDeviceAlignment);
    const size_t map_bytes = round_up(span, page) + 2 * page;
    void* m = mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return cudaErrorMemoryAllocation;
    char* map = static_cast<char*>(m);
    if (mprotect(map, page, PROT_NONE) != 0 || mprotect(map + map_bytes - page, page, PROT_NONE) != 0) {
      munmap(map, map_bytes);
      return cudaErrorMemoryAllocation;
    }
    if (!plan_only()) std::memset(map + page, kCanary, map_bytes - 2 * page);
    char* p = map + map_bytes - page - span;
    blocks[p] = GuardedBlock{map, map_bytes, bytes};
    used += bytes;
    *ptr = p;
    return cudaSuccess;
  }

  cudaError_t release(void* ptr) {
    if (!ptr) return cudaSuccess;
    std::lock_guard<std::mutex> lock(mutex);
    const auto it = blocks.find(ptr);
    if (it == blocks.end()) return cudaErrorInvalidValue;
    if (!plan_only()) check_canaries(it->first, it->second);
    used -= it->second.bytes;
    munmap(it->second.map, it->second.map_bytes);
    blocks.erase(it);
    return cudaSuccess;
  }

  void check_all() {
    if (plan_only()) return;
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& [p, b] : blocks) check_canaries(p, b);
  }

  std::vector<std::pair<uintptr_t, uintptr_t>> ranges() {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<std::pair<uintptr_t, uintptr_t>> out;
    for (const auto& [p, b] : blocks) out.emplace_back(reinterpret_cast<uintptr_t>(p), reinterpret_cast<uintptr_t>(p) + b.bytes);
    return out;
  }

 private:
  static void check_canaries(void* ptr, const GuardedBlock& b) {
    const char* p = static_cast<const char*>(ptr);
    const char* first = b.map + page_bytes();
    const char* last = b.map + b.map_bytes - page_bytes();
    for (const char* q = first; q < p; ++q) {
      if (static_cast<unsigned char>(*q) != kCanary) emulator_fault("a write before the start of a device array");
    }
    for (const char* q = p + b.bytes; q < last; ++q) {
      if (static_cast<unsigned char>(*q) != kCanary) emulator_fault("a write past the end of a device array");
    }
  }
};

DeviceHeap& heap() {
  static auto* h = new DeviceHeap("CBLOSS_EMULATED_DEVICE_MEMORY");  // (immortal: static destructors free memory at exit)
  return *h;
}

DeviceHeap& pinned_heap() {
  static auto* h = new DeviceHeap("CBLOSS_EMULATED_PINNED_MEMORY");  // (immortal: static destructors free memory at exit)
  return *h;
}

bool is_pinned_host(const void* p) {
  DeviceHeap& pinned = pinned_heap();
  std::lock_guard<std::mutex> lock(pinned.mutex);
  const char* at = static_cast<const char*>(p);
  for (const auto& [block, guarded] : pinned.blocks) {
    const char* begin = static_cast<const char*>(block);
    if (at >= begin && at < begin + guarded.bytes) return true;
  }
  return false;
}

// Copies to the device from pageable host memory on the default stream: cudaMemcpy may return before
// their DMA lands (CUDA's "API synchronization behavior"), and kernels on non-blocking streams do not
// wait for the default stream. The emulator lands them only when the default stream is synchronized,
// or runs its next copy, or memory is freed — so code that launches kernels on its own streams right
// after such a copy, without synchronizing, reads the bytes that were there before.
struct PendingDma {
  void* dst;
  std::vector<char> bytes;
};
std::mutex dma_mutex;
std::vector<PendingDma> pending_dma;

void land_pending_dma() {
  std::lock_guard<std::mutex> lock(dma_mutex);
  for (PendingDma& d : pending_dma) std::memcpy(d.dst, d.bytes.data(), d.bytes.size());
  pending_dma.clear();
}

// Every stream, and one lock for all of them (recursive: running an operation may run another
// stream's). Never destroyed: memory freed by static destructors at exit synchronizes through them.
std::recursive_mutex& stream_mutex() {
  static auto* m = new std::recursive_mutex;
  return *m;
}

std::vector<CUstream_st*>& streams() {
  static auto* all = new std::vector<CUstream_st*>;
  return *all;
}

// Runs `stream`'s operations until `mark` of them have run.
void run_until(CUstream_st* stream, uint64_t mark) {
  std::lock_guard<std::recursive_mutex> lock(stream_mutex());
  while (stream->done < mark) {
    std::function<void()> op = std::move(stream->ops.front());
    stream->ops.pop_front();
    op();
    ++stream->done;
  }
}

void enqueue(cudaStream_t stream, std::function<void()> op) {
  if (!stream) return op();
  std::lock_guard<std::recursive_mutex> lock(stream_mutex());
  stream->ops.push_back(std::move(op));
  ++stream->enqueued;
}

// Under the index schedule a kernel runs as soon as it is launched (with what its stream had queued
// before it, event waits included), while copies wait: so a kernel that needs a copy on another
// stream without an event between them runs before that copy lands, and reads the old bytes. Under
// the others kernels wait too (host_wait).
void run_launched(cudaStream_t stream) {
  if (stream && schedule() == Schedule::Index) run_until(stream, stream->enqueued);
}

// The seeded generator of the shuffle schedule (used under stream_mutex).
std::mt19937_64& shuffle_generator() {
  static auto* generator = [] {
    const char* env = std::getenv("CBLOSS_EMULATED_SEED");
    return new std::mt19937_64(env ? std::strtoull(env, nullptr, 10) : 1);
  }();
  return *generator;
}

// The host waits for `stream` to have run `mark` operations. What else runs first — each an order a
// GPU may take, since only events order the work of different streams:
//   * index: nothing; the awaited stream runs up to `mark`.
//   * reverse: every other stream runs all it was given, the most recently created first, then the
//     awaited stream: work on a later stream that needs an earlier stream's copy or kernel without an
//     event between them (a missing cudaStreamWaitEvent) runs before it and reads the old bytes.
//   * shuffle: the streams in a random order, each either running all it was given or nothing (the
//     awaited one included: it may run past `mark`), then the awaited stream up to `mark` — so work a
//     stream queued after an event can run before work on another stream the host waits for, too.
void host_wait(CUstream_st* stream, uint64_t mark) {
  std::lock_guard<std::recursive_mutex> lock(stream_mutex());
  std::vector<CUstream_st*> order = streams();  // (a copy: running an operation never adds a stream)
  if (schedule() == Schedule::Reverse) {
    std::reverse(order.begin(), order.end());
    order.erase(std::remove(order.begin(), order.end(), stream), order.end());
  } else if (schedule() == Schedule::Shuffle) {
    std::mt19937_64& random = shuffle_generator();
    std::shuffle(order.begin(), order.end(), random);
    order.erase(std::remove_if(order.begin(), order.end(), [&](CUstream_st*) { return random() & 1; }), order.end());
  } else {
    order.clear();
  }
  for (CUstream_st* other : order) run_until(other, other->enqueued);
  run_until(stream, mark);
}

// What a device synchronization does: every stream runs everything it was given.
void run_all_streams() {
  std::lock_guard<std::recursive_mutex> lock(stream_mutex());
  for (CUstream_st* s : streams()) run_until(s, s->enqueued);
}

// Each device's compute capability: 9.0 (the emulator runs clusters, as sm_90 does), or what
// CBLOSS_EMULATED_COMPUTE_CAPABILITY says — "7.5" for every device, "7.5,9.0" device by device — so
// that a GPU the kernels were not built for can be tested.
void compute_capability(int device, int* major, int* minor) {
  *major = 9, *minor = 0;
  const char* env = std::getenv("CBLOSS_EMULATED_COMPUTE_CAPABILITY");
  if (!env || !*env) return;
  const std::string list = env;
  size_t at = 0;
  for (int d = 0; d < device && list.find(',', at) != std::string::npos; ++d) at = list.find(',', at) + 1;
  if (std::sscanf(list.c_str() + at, "%d.%d", major, minor) != 2) {
    emulator_fault("CBLOSS_EMULATED_COMPUTE_CAPABILITY is not like 7.5 or 7.5,9.0");
  }
}

thread_local cudaError_t last_error = cudaSuccess;
thread_local int current_device = 0;

cudaError_t record(cudaError_t err) {
  if (err != cudaSuccess) last_error = err;
  return err;
}

}  // namespace

const Coordinates& coordinates() {
  BlockRun& run = run_state();
  return run.fibers[run.current].where;
}
const dim3& block_dim() { return run_state().block; }
const dim3& grid_dim() { return run_state().grid; }

void sync_block() { suspend(FiberState::AtBlockSync); }

void* dynamic_shared() { return run_state().shared.data(); }

void poison_for_block(void* shared, size_t bytes, uint64_t* stamp) {
  BlockRun& run = run_state();
  const uint64_t serial = run.serial;
  if (*stamp == serial) return;
  if (std::find(run.static_arrays.begin(), run.static_arrays.end(), shared) == run.static_arrays.end()) {
    run.static_arrays.push_back(shared);
    run.static_shared += bytes;
  }
  std::memset(shared, 0xff, bytes);
  *stamp = serial;
}

unsigned cluster_rank() { return run_state().cluster_rank; }

void sync_cluster() { suspend(FiberState::AtClusterSync); }

void misaligned_access(const void* address, size_t bytes) {
  std::fprintf(stderr, "cbloss CUDA emulator: a %zu-byte vector access at %p\n", bytes, address);
  emulator_fault("a misaligned vector access");
}

uint64_t warp_exchange(uint64_t bits, unsigned source_lane) {
  BlockRun& run = run_state();
  const size_t self = run.current;
  const size_t warp = self / 32;
  const unsigned parity = run.fibers[self].generation & 1u;
  uint64_t* slots = run.exchange.data() + warp * 64 + parity * 32;
  slots[self % 32] = bits;
  suspend(FiberState::AtWarpSync);
  run.fibers[self].generation++;
  if (warp * 32 + source_lane >= run.count) emulator_fault("a shuffle reads a lane outside the block");
  return slots[source_lane];
}

namespace {

size_t block_threads(dim3 block) { return static_cast<size_t>(block.x) * block.y * block.z; }

// What every launch checks first: a valid shape (else cudaErrorInvalidValue) and the injected
// failure (CBLOSS_EMULATED_LAUNCH_FAILURE=1). True when the launch must not run.
bool refuse_launch(bool valid_shape) {
  if (!valid_shape) {
    record(cudaErrorInvalidValue);
    return true;
  }
  const char* fault = std::getenv("CBLOSS_EMULATED_LAUNCH_FAILURE");
  if (fault && fault[0] == '1') {
    record(cudaErrorLaunchFailure);
    return true;
  }
  return false;
}

// Dynamic shared memory a block may have: 48 KB, or what cudaFuncSetAttribute raised the kernel's limit
// to on the current device (up to kMaxSharedBytes, sm_90's).
constexpr size_t kDefaultSharedBytes = 48 * 1024;
constexpr size_t kMaxSharedBytes = 227 * 1024;

std::mutex& limits_mutex() {
  static std::mutex m;
  return m;
}

std::unordered_map<const void*, size_t>& shared_limits(int device) {
  static std::unordered_map<const void*, size_t> limits[kDevices];
  return limits[device];
}

size_t shared_limit(const void* kernel) {
  std::lock_guard<std::mutex> lock(limits_mutex());
  const auto& limits = shared_limits(current_device);
  const auto it = limits.find(kernel);
  return it == limits.end() ? kDefaultSharedBytes : it->second;
}

// Static and dynamic shared memory together a block of `kernel` may have: 48 KB, or, once its dynamic
// limit was raised (cudaFuncSetAttribute), what sm_90 gives a block.
size_t shared_allowance(const void* kernel) {
  std::lock_guard<std::mutex> lock(limits_mutex());
  const auto& limits = shared_limits(current_device);
  return limits.count(kernel) ? kMaxSharedBytes : kDefaultSharedBytes;
}

// ---- Traffic accounting (CBLOSS_EMULATED_TRAFFIC; the header comment says what is counted) ----

struct NamedRange {
  std::string name;
  uintptr_t begin;
  uintptr_t end;
};
using BufferNames = std::vector<NamedRange>;

std::mutex& names_mutex() {
  static std::mutex m;
  return m;
}

BufferNames& buffer_names() {
  static auto* names = new BufferNames;  // (immortal, as the heaps)
  return *names;
}

// Counts of one direction (read or written) of one buffer in one launch.
struct Flow {
  uint64_t requested = 0;     // bytes the lanes asked for
  uint64_t used = 0;          // bytes of their union, per instruction
  uint64_t sectors = 0;       // distinct 32-byte sectors, per instruction
  uint64_t instructions = 0;  // warp instructions that touched the buffer
  std::unordered_set<uint64_t> distinct;  // sectors touched at least once in the launch
};

struct BufferTraffic {
  Flow read;
  Flow write;
};

// What a launch that records its traffic was given at its launch, and what it counts as it runs.
struct LaunchTraffic {
  std::string file;
  std::string kernel;
  BufferNames names;  // as they were at the launch
  std::vector<std::pair<uintptr_t, uintptr_t>> device;  // device memory's blocks at the launch
  unsigned cluster = 0;
  std::map<std::string, BufferTraffic> buffers;
};

LaunchTraffic* traffic_now = nullptr;  // the launch being run, when it records

// The demangled name of a kernel (its symbol, which the emulated build exports), or "?".
std::string kernel_name(const void* kernel) {
  Dl_info info;
  if (!kernel || !dladdr(kernel, &info) || !info.dli_sname) return "?";
  int status = 0;
  char* demangled = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
  std::string name = status == 0 && demangled ? demangled : info.dli_sname;
  std::free(demangled);
  return name;
}

// The request a launch makes when CBLOSS_EMULATED_TRAFFIC names a file, else null.
std::shared_ptr<LaunchTraffic> traffic_request(const void* kernel, unsigned cluster) {
  const char* file = std::getenv("CBLOSS_EMULATED_TRAFFIC");
  if (!file || !*file) return nullptr;
  auto t = std::make_shared<LaunchTraffic>();
  t->file = file;
  t->kernel = kernel_name(kernel);
  t->cluster = cluster;
  t->device = heap().ranges();
  std::lock_guard<std::mutex> lock(names_mutex());
  t->names = buffer_names();
  return t;
}

// The name of the buffer holding `address`: a named range, "unnamed" device memory, or null (shared
// memory or the stack: not global traffic).
const std::string* buffer_at(const LaunchTraffic& t, uintptr_t address) {
  static const std::string unnamed = "unnamed";
  for (const NamedRange& r : t.names) {
    if (address >= r.begin && address < r.end) return &r.name;
  }
  for (const auto& [begin, end] : t.device) {
    if (address >= begin && address < end) return &unnamed;
  }
  return nullptr;
}

// Adds one warp instruction — the accesses [first, last), sorted by address (a buffer's are consecutive)
// — to the launch's counts: the lanes' bytes merged into intervals within one buffer each, each
// interval's sectors counted once for the instruction.
void account_instruction(LaunchTraffic& t, const Access* first, const Access* last) {
  struct Counts {
    const std::string* buffer;
    uint64_t requested, used, sectors;
  };
  std::vector<Counts> per_buffer;
  uint64_t last_sector = UINT64_MAX;
  for (const Access* a = first; a != last;) {
    const std::string* name = a->buffer;
    Flow& total = first->store ? t.buffers[*name].write : t.buffers[*name].read;
    auto c = std::find_if(per_buffer.begin(), per_buffer.end(), [&](const Counts& e) { return e.buffer == name; });
    if (c == per_buffer.end()) c = per_buffer.insert(per_buffer.end(), Counts{name, 0, 0, 0});
    const uintptr_t begin = a->address;
    uintptr_t end = begin;
    for (; a != last && a->buffer == name && a->address <= end; ++a) {
      end = std::max<uintptr_t>(end, a->address + a->bytes);
      c->requested += a->bytes;
    }
    c->used += end - begin;
    for (uint64_t s = begin / 32; s <= (end - 1) / 32; ++s) {
      if (s != last_sector) c->sectors++, total.distinct.insert(s);
      last_sector = s;
    }
  }
  for (const Counts& c : per_buffer) {
    Flow& total = first->store ? t.buffers[*c.buffer].write : t.buffers[*c.buffer].read;
    total.requested += c.requested, total.used += c.used, total.sectors += c.sectors, total.instructions++;
  }
}

// Counts a block's recorded accesses, warp instruction by warp instruction, and forgets them.
void account_block(BlockRun& run) {
  std::vector<Access>& acc = run.accesses;
  if (traffic_now && !acc.empty()) {
    // the warp instruction an access belongs to; within one, the accesses by address
    const auto instruction = [](const Access& a) {
      return std::make_tuple(a.thread / 32, a.epoch, reinterpret_cast<uintptr_t>(a.file), a.line, a.store, a.instance);
    };
    std::sort(acc.begin(), acc.end(), [&](const Access& a, const Access& b) {
      return std::make_pair(instruction(a), a.address) < std::make_pair(instruction(b), b.address);
    });
    size_t i = 0;
    while (i < acc.size()) {
      size_t j = i + 1;
      while (j < acc.size() && instruction(acc[j]) == instruction(acc[i])) ++j;
      account_instruction(*traffic_now, acc.data() + i, acc.data() + j);
      i = j;
    }
  }
  acc.clear();
}

void write_flow(std::FILE* f, const char* what, const Flow& flow) {
  std::fprintf(f,
               "\"%s\":{\"requested\":%llu,\"used\":%llu,\"sectors\":%llu,\"instructions\":%llu,\"distinct\":%zu}",
               what, static_cast<unsigned long long>(flow.requested), static_cast<unsigned long long>(flow.used),
               static_cast<unsigned long long>(flow.sectors), static_cast<unsigned long long>(flow.instructions),
               flow.distinct.size());
}

// Appends the launch's line to the traffic file.
void write_traffic(const LaunchTraffic& t, dim3 grid, dim3 block, size_t shared_bytes, bool ran) {
  std::FILE* f = std::fopen(t.file.c_str(), "a");
  if (!f) emulator_fault("CBLOSS_EMULATED_TRAFFIC names a file that cannot be opened");
  std::fprintf(f, "{\"kernel\":\"%s\",\"grid\":[%u,%u,%u],\"block\":[%u,%u,%u],\"cluster\":%u,\"shared\":%zu,\"ran\":%s,\"buffers\":{",
               t.kernel.c_str(), grid.x, grid.y, grid.z, block.x, block.y, block.z, t.cluster, shared_bytes,
               ran ? "true" : "false");
  bool first = true;
  for (const auto& [name, b] : t.buffers) {
    std::fprintf(f, "%s\"%s\":{", first ? "" : ",", name.c_str());
    write_flow(f, "read", b.read);
    std::fputc(',', f);
    write_flow(f, "write", b.write);
    std::fputc('}', f);
    first = false;
  }
  std::fputs("}}\n", f);
  std::fclose(f);
}

// Starts counting a launch's traffic (when it records): true when its blocks are to run.
bool begin_traffic(LaunchTraffic* t) {
  traffic_now = t;
  counting_traffic = t && !plan_only();
  return !(t && plan_only());
}

void end_traffic(dim3 grid, dim3 block, size_t shared_bytes) {
  if (traffic_now) write_traffic(*traffic_now, grid, block, shared_bytes, !plan_only());
  traffic_now = nullptr;
  counting_traffic = false;
}

// The blocks of a cluster launch, kept between launches (their fiber stacks are allocated once).
std::vector<BlockRun>& cluster_runs() {
  static std::vector<BlockRun> runs;
  return runs;
}

// After every launch: no kernel wrote just outside a device array.
void check_device_canaries() {
  heap().check_all();
  pinned_heap().check_all();
}

// Runs a plain launch: block after block.
void run_grid(dim3 grid, dim3 block, size_t shared_bytes, size_t shared_allowance, const std::function<void()>& body,
              LaunchTraffic* traffic) {
  const size_t threads = block_threads(block);
  std::lock_guard<std::recursive_mutex> lock(launch_mutex());
  const bool run_blocks = begin_traffic(traffic);
  BlockRun& run = run_state();
  if (run.body) emulator_fault("a kernel launched from a kernel");
  run.body = &body;
  run.block = block;
  run.grid = grid;
  run.count = threads;
  run.shared_bytes = shared_bytes;
  run.shared_allowance = shared_allowance;
  const size_t blocks = run_blocks ? static_cast<size_t>(grid.x) * grid.y * grid.z : 0;
  for (size_t k = 0; k < blocks; ++k) {
    const size_t b = reverse_schedule() ? blocks - 1 - k : k;
    const dim3 where(static_cast<unsigned>(b % grid.x), static_cast<unsigned>(b / grid.x % grid.y),
                     static_cast<unsigned>(b / grid.x / grid.y));
    if (run.fibers.size() < threads) run.fibers.resize(threads);
    for (size_t i = 0; i < threads; ++i) run.fibers[i].where.block = where;
    run_block(run);
    account_block(run);
  }
  run.body = nullptr;
  end_traffic(grid, block, shared_bytes);
  check_device_canaries();
}

// Runs a cluster launch: the blocks of each cluster take turns, each up to the cluster barrier.
void run_cluster_grid(dim3 grid, dim3 block, unsigned cluster, size_t shared_bytes, size_t shared_allowance,
                      const std::function<void()>& body,
                      LaunchTraffic* traffic) {
  const size_t threads = block_threads(block);
  std::lock_guard<std::recursive_mutex> lock(launch_mutex());
  const bool run_blocks = begin_traffic(traffic);
  if (run_state().body) emulator_fault("a kernel launched from a kernel");
  std::vector<BlockRun>& runs = cluster_runs();
  if (runs.size() < cluster) runs.resize(cluster);
  const bool reverse = reverse_schedule();
  const size_t clusters = run_blocks ? static_cast<size_t>(grid.x / cluster) * grid.y : 0;
  for (size_t k = 0; k < clusters; ++k) {
    const size_t first = (reverse ? clusters - 1 - k : k) * cluster;  // the cluster's first block
    for (unsigned r = 0; r < cluster; ++r) {
      BlockRun& run = runs[r];
      const size_t b = first + r;
      const dim3 where(static_cast<unsigned>(b % grid.x), static_cast<unsigned>(b / grid.x), 0);
      run.body = &body, run.block = block, run.grid = grid, run.count = threads, run.cluster_rank = r;
      run.shared_bytes = shared_bytes;
      run.shared_allowance = shared_allowance;
      if (run.fibers.size() < threads) run.fibers.resize(threads);
      for (size_t i = 0; i < threads; ++i) run.fibers[i].where.block = where;
      start_block(run);
    }
    // Each block runs to the cluster barrier in turn (in either order); then all pass it together.
    for (;;) {
      for (unsigned j = 0; j < cluster; ++j) {
        BlockRun& run = runs[reverse ? cluster - 1 - j : j];
        running() = &run;
        run_phase(run);
      }
      size_t done = 0, waiting = 0;
      for (unsigned r = 0; r < cluster; ++r) {
        for (size_t i = 0; i < threads; ++i) {
          done += runs[r].fibers[i].state == FiberState::Done;
          waiting += runs[r].fibers[i].state == FiberState::AtClusterSync;
        }
      }
      if (done == cluster * threads) {
        for (unsigned r = 0; r < cluster; ++r) check_shared_guard(runs[r]), account_block(runs[r]);
        break;
      }
      if (waiting != cluster * threads) {
        emulator_fault("a cluster barrier that not every thread of the cluster reaches");
      }
      for (unsigned r = 0; r < cluster; ++r) {
        for (size_t i = 0; i < threads; ++i) runs[r].fibers[i].state = FiberState::Ready;
      }
    }
  }
  for (BlockRun& run : runs) run.body = nullptr;
  running() = &single_run();
  end_traffic(grid, block, shared_bytes);
  check_device_canaries();
}

}  // namespace

bool counting_traffic = false;

void count_access(const void* address, unsigned bytes, bool store, Site site) {
  BlockRun& run = run_state();
  Fiber& self = run.fibers[run.current];
  auto it = std::find_if(self.site_counts.begin(), self.site_counts.end(), [&](const SiteCount& c) {
    return c.line == site.line && c.file == site.file && c.store == store;
  });
  if (it == self.site_counts.end()) it = self.site_counts.insert(self.site_counts.end(), {site.file, site.line, store, 0});
  const uint32_t instance = it->count++;
  const std::string* buffer = bytes > 0 ? buffer_at(*traffic_now, reinterpret_cast<uintptr_t>(address)) : nullptr;
  if (!buffer) return;  // a lane that skips its turn (load_if, store_if), or shared memory: counted, not recorded
  run.accesses.push_back(Access{buffer, static_cast<uint32_t>(run.current), self.epoch, site.file, site.line, instance, store,
                                bytes, reinterpret_cast<uintptr_t>(address)});
}

void name_buffer(const char* name, const void* address, size_t bytes) {
  if (!address || bytes == 0) return;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(address), end = begin + bytes;
  std::lock_guard<std::mutex> lock(names_mutex());
  BufferNames& names = buffer_names();
  names.erase(std::remove_if(names.begin(), names.end(), [&](const NamedRange& r) { return r.begin < end && begin < r.end; }),
              names.end());
  names.push_back(NamedRange{name, begin, end});
}

void forget_buffer_names() {
  std::lock_guard<std::mutex> lock(names_mutex());
  buffer_names().clear();
}

void launch(dim3 grid, dim3 block, cudaStream_t stream, const std::function<void()>& body) {
  launch_shared(grid, block, 0, nullptr, stream, body);
}

void launch_shared(dim3 grid, dim3 block, size_t shared_bytes, const void* kernel, cudaStream_t stream,
                   const std::function<void()>& body) {
  const size_t threads = block_threads(block);
  if (refuse_launch(threads > 0 && threads <= 1024 && grid.x > 0 && grid.y > 0 && grid.z > 0 && grid.y <= 65535 &&
                    grid.z <= 65535 && shared_bytes <= shared_limit(kernel))) {
    return;
  }
  const std::shared_ptr<LaunchTraffic> traffic = traffic_request(kernel, 0);
  const size_t allowance = shared_allowance(kernel);
  enqueue(stream, [=] { run_grid(grid, block, shared_bytes, allowance, body, traffic.get()); });
  run_launched(stream);
}

cudaError_t launch_cooperative(dim3 grid, dim3 block, size_t shared_bytes, const void* kernel, cudaStream_t stream,
                               const std::function<void()>& body) {
  const size_t threads = block_threads(block);
  if (refuse_launch(threads > 0 && threads <= 1024 && grid.x > 0 && grid.y == 1 && grid.z == 1 &&
                    shared_bytes <= shared_limit(kernel))) {
    return last_error;
  }
  int per_sm = 0;
  cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, static_cast<int>(threads), shared_bytes);
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, current_device);
  if (grid.x > static_cast<unsigned>(per_sm) * static_cast<unsigned>(prop.multiProcessorCount)) {
    return record(cudaErrorCooperativeLaunchTooLarge);
  }
  const std::shared_ptr<LaunchTraffic> traffic = traffic_request(kernel, 0);
  const size_t allowance = shared_allowance(kernel);
  enqueue(stream, [=] { run_cluster_grid(grid, block, grid.x, shared_bytes, allowance, body, traffic.get()); });
  run_launched(stream);
  return cudaSuccess;
}

void launch_cluster(dim3 grid, dim3 block, unsigned cluster, size_t shared_bytes, const void* kernel,
                    cudaStream_t stream, const std::function<void()>& body) {
  const size_t threads = block_threads(block);
  if (refuse_launch(threads > 0 && threads <= 1024 && cluster > 0 && cluster <= kMaxClusterBlocks &&
                    grid.x % cluster == 0 && grid.y > 0 && grid.y <= 65535 && grid.z == 1 &&
                    shared_bytes <= shared_limit(kernel))) {
    return;
  }
  const std::shared_ptr<LaunchTraffic> traffic = traffic_request(kernel, cluster);
  const size_t allowance = shared_allowance(kernel);
  enqueue(stream, [=] { run_cluster_grid(grid, block, cluster, shared_bytes, allowance, body, traffic.get()); });
  run_launched(stream);
}

}  // namespace cbloss_emu

using cbloss_emu::record;

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorCooperativeLaunchTooLarge: return "cudaErrorCooperativeLaunchTooLarge";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorCooperativeLaunchTooLarge: return "too many blocks in cooperative launch";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
  }
  return "unknown error";
}

cudaError_t cudaGetLastError() {
  const cudaError_t err = cbloss_emu::last_error;
  cbloss_emu::last_error = cudaSuccess;
  return err;
}

// The emulator reports itself as runtime and driver "version 1".
cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = 1;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* version) {
  *version = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceCount(int* count) {
  *count = cbloss_emu::kDevices;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device < 0 || device >= cbloss_emu::kDevices) return record(cudaErrorInvalidDevice);
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "cbloss CUDA emulator (CPU) #%d", device);
  prop->totalGlobalMem = cbloss_emu::heap().budget;
  // (CBLOSS_EMULATED_MULTIPROCESSORS: as many as a real device has, for the launch shapes it would get)
  const char* sms = std::getenv("CBLOSS_EMULATED_MULTIPROCESSORS");
  prop->multiProcessorCount = sms && std::atoi(sms) > 0 ? std::atoi(sms) : 1;
  prop->sharedMemPerBlockOptin = cbloss_emu::kMaxSharedBytes;
  cbloss_emu::compute_capability(device, &prop->major, &prop->minor);
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attribute, int value) {
  if (attribute != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      static_cast<size_t>(value) > cbloss_emu::kMaxSharedBytes) {
    return record(cudaErrorInvalidValue);
  }
  std::lock_guard<std::mutex> lock(cbloss_emu::limits_mutex());
  cbloss_emu::shared_limits(cbloss_emu::current_device)[kernel] = static_cast<size_t>(value);
  return cudaSuccess;
}

cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, const void* kernel, int block_size,
                                                          size_t shared_bytes) {
  if (block_size <= 0 || block_size > 1024) return record(cudaErrorInvalidValue);
  constexpr size_t kThreadsPerSM = 2048, kBlocksPerSM = 32, kReservedShared = 1024;
  constexpr size_t kSharedPerSM = cbloss_emu::kMaxSharedBytes + kReservedShared;
  size_t fit = std::min(kThreadsPerSM / static_cast<size_t>(block_size), kBlocksPerSM);
  fit = std::min(fit, kSharedPerSM / (shared_bytes + kReservedShared));
  if (shared_bytes > cbloss_emu::shared_limit(kernel)) fit = 0;
  *blocks = static_cast<int>(fit);
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= cbloss_emu::kDevices) return record(cudaErrorInvalidDevice);
  cbloss_emu::current_device = device;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) { return record(cbloss_emu::heap().allocate(ptr, bytes)); }

cudaError_t cudaFree(void* ptr) {
  cbloss_emu::land_pending_dma();  // (cudaFree synchronizes the device)
  cbloss_emu::run_all_streams();
  return record(cbloss_emu::heap().release(ptr));
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) { return record(cbloss_emu::pinned_heap().allocate(ptr, bytes)); }

cudaError_t cudaFreeHost(void* ptr) {
  cbloss_emu::run_all_streams();  // (cudaFreeHost synchronizes the device)
  return record(cbloss_emu::pinned_heap().release(ptr));
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  cbloss_emu::land_pending_dma();  // the default stream's earlier copies come first
  if (bytes == 0) return cudaSuccess;
  if (kind == cudaMemcpyHostToDevice && !cbloss_emu::is_pinned_host(src)) {
    const char* from = static_cast<const char*>(src);
    std::lock_guard<std::mutex> lock(cbloss_emu::dma_mutex);
    cbloss_emu::pending_dma.push_back({dst, std::vector<char>(from, from + bytes)});
    return cudaSuccess;
  }
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t stream) {
  if (bytes) cbloss_emu::enqueue(stream, [=] { std::memmove(dst, src, bytes); });
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  if (bytes) cbloss_emu::enqueue(stream, [=] { std::memset(dst, value, bytes); });
  return cudaSuccess;
}

// A stream is a queue of operations (see enqueue, run_launched, host_wait); an event, a stream and a
// count of its operations.
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  std::lock_guard<std::recursive_mutex> lock(cbloss_emu::stream_mutex());
  *stream = new CUstream_st;
  cbloss_emu::streams().push_back(*stream);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (!stream) return record(cudaErrorInvalidResourceHandle);
  std::lock_guard<std::recursive_mutex> lock(cbloss_emu::stream_mutex());
  cbloss_emu::run_until(stream, stream->enqueued);  // (its work still completes)
  auto& all = cbloss_emu::streams();
  all.erase(std::find(all.begin(), all.end(), stream));
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (stream == nullptr) {
    cbloss_emu::land_pending_dma();  // the default stream (the loss streams are non-blocking: not them)
    return cudaSuccess;
  }
  cbloss_emu::host_wait(stream, stream->enqueued);
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  CUstream_st* source = event->stream;
  const uint64_t mark = event->mark;
  if (source) cbloss_emu::enqueue(stream, [source, mark] { cbloss_emu::run_until(source, mark); });
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) {
  *event = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(cbloss_emu::stream_mutex());
  event->stream = stream;
  event->mark = stream ? stream->enqueued : 0;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (event->stream) cbloss_emu::host_wait(event->stream, event->mark);
  return cudaSuccess;
}
