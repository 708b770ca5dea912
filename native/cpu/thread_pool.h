// A persistent pool of worker threads for the CPU backend: no thread is created per call. A job is
// a count of independent tasks; the calling thread works on it too. A job that arrives while the pool
// is busy (a call from another thread) runs on its calling thread alone, so concurrent callers never
// wait for each other's work.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cbloss {
namespace cpu {

class ThreadPool {
 public:
  static ThreadPool& instance();

  // Threads a job may use, the caller included (>= 1).
  int threads() const;
  // Changes the number of threads (1 = the calling thread only); waits for a running job.
  void set_threads(int n);

  // Runs task(i) for every i in [0, count), spread over the pool; returns when all are done.
  void run(int64_t count, const std::function<void(int64_t)>& task);

  ~ThreadPool();

 private:
  ThreadPool();
  void start(int n);
  void stop();
  void worker_loop();
  void work_on_current_job();

  std::mutex busy_;  // held by the caller whose job the workers are running
  std::mutex m_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t count_ = 0;
  int64_t next_ = 0;
  int active_ = 0;
  uint64_t generation_ = 0;
  bool quit_ = false;
};

}  // namespace cpu
}  // namespace cbloss
