#include "thread_pool.h"

#include <cstdlib>

namespace cbloss {
namespace cpu {

namespace {

int default_threads() {
  if (const char* env = std::getenv("CBLOSS_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n >= 1) return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

}  // namespace

ThreadPool& ThreadPool::instance() {
  static ThreadPool pool;
  return pool;
}

ThreadPool::ThreadPool() { start(default_threads()); }

ThreadPool::~ThreadPool() { stop(); }

int ThreadPool::threads() const { return static_cast<int>(workers_.size()) + 1; }

void ThreadPool::set_threads(int n) {
  std::lock_guard<std::mutex> busy(busy_);
  stop();
  start(n < 1 ? 1 : n);
}

void ThreadPool::start(int n) {
  quit_ = false;
  for (int i = 1; i < n; ++i) workers_.emplace_back([this] { worker_loop(); });
}

void ThreadPool::stop() {
  {
    std::lock_guard<std::mutex> lock(m_);
    quit_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

void ThreadPool::work_on_current_job() {
  for (;;) {
    int64_t i;
    {
      std::lock_guard<std::mutex> lock(m_);
      if (next_ >= count_) return;
      i = next_++;
    }
    (*task_)(i);
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(m_);
      wake_.wait(lock, [&] { return quit_ || generation_ != seen; });
      if (quit_) return;
      seen = generation_;
      ++active_;
    }
    work_on_current_job();
    {
      std::lock_guard<std::mutex> lock(m_);
      --active_;
    }
    done_.notify_all();
  }
}

void ThreadPool::run(int64_t count, const std::function<void(int64_t)>& task) {
  std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
  if (!busy.owns_lock() || workers_.empty() || count <= 1) {
    for (int64_t i = 0; i < count; ++i) task(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(m_);
    task_ = &task;
    count_ = count;
    next_ = 0;
    ++generation_;
  }
  wake_.notify_all();
  work_on_current_job();
  std::unique_lock<std::mutex> lock(m_);
  done_.wait(lock, [&] { return next_ >= count_ && active_ == 0; });
  task_ = nullptr;
}

}  // namespace cpu
}  // namespace cbloss
