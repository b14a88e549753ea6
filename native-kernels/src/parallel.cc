// parallel.cc — the worker pool behind ParallelFor (see parallel.h).
//
// Jobs wait in a FIFO queue. A worker joins the job at the front, claims indices with an atomic
// counter until none are left, then leaves. The submitting thread claims indices too, then removes the
// job from the queue and waits until every helper has left; only then does the job (on its stack) die.
// The pool grows lazily to Threads() - 1 workers and is never torn down (it lives until the process
// exits, so addon unloading cannot race with sleeping workers).
#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace whittle {
namespace {

struct Job {
  const std::function<void(size_t)>* fn = nullptr;
  size_t n = 0;
  std::atomic<size_t> next{0};
  int helpers_wanted = 0;  // pool threads that may still join (guarded by Pool::mu)
  int helpers_active = 0;  // pool threads inside RunIndices (guarded by Pool::mu)
  std::condition_variable helpers_left;
  std::mutex error_mu;
  std::exception_ptr error;
};

void RunIndices(Job& job) {
  for (;;) {
    const size_t i = job.next.fetch_add(1, std::memory_order_relaxed);
    if (i >= job.n) return;
    try {
      (*job.fn)(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(job.error_mu);
      if (!job.error) job.error = std::current_exception();
      job.next.store(job.n, std::memory_order_relaxed);  // stop handing out further indices
    }
  }
}

class Pool {
 public:
  void Run(size_t n, const std::function<void(size_t)>& fn, int threads) {
    Job job;
    job.fn = &fn;
    job.n = n;
    job.helpers_wanted = static_cast<int>(std::min<size_t>(n - 1, static_cast<size_t>(threads - 1)));
    const bool shared = job.helpers_wanted > 0;
    if (shared) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        EnsureWorkers(threads - 1);
        queue_.push_back(&job);
      }
      work_available_.notify_all();
    }

    RunIndices(job);

    if (shared) {
      std::unique_lock<std::mutex> lock(mu_);
      auto it = std::find(queue_.begin(), queue_.end(), &job);
      if (it != queue_.end()) queue_.erase(it);
      job.helpers_left.wait(lock, [&] { return job.helpers_active == 0; });
    }
    if (job.error) std::rethrow_exception(job.error);
  }

 private:
  void EnsureWorkers(int count) {  // mu_ held
    while (static_cast<int>(workers_.size()) < count) {
      workers_.emplace_back([this] { WorkerLoop(); });
      workers_.back().detach();
    }
  }

  void WorkerLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      work_available_.wait(lock, [&] { return !queue_.empty(); });
      Job* job = queue_.front();
      job->helpers_active++;
      if (--job->helpers_wanted <= 0) queue_.pop_front();
      lock.unlock();
      RunIndices(*job);
      lock.lock();
      if (--job->helpers_active == 0) job->helpers_left.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable work_available_;
  std::deque<Job*> queue_;
  std::vector<std::thread> workers_;
};

Pool& ThePool() {
  static Pool* pool = new Pool();  // intentionally never destroyed, see the file comment
  return *pool;
}

std::atomic<int> g_threads{0};

}  // namespace

int HardwareThreads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

int Threads() {
  const int t = g_threads.load(std::memory_order_relaxed);
  return t > 0 ? t : HardwareThreads();
}

void SetThreads(int n) { g_threads.store(n > 0 ? std::min(n, 256) : 0, std::memory_order_relaxed); }

void ParallelFor(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  const int threads = Threads();
  if (n == 1 || threads <= 1) {
    for (size_t i = 0; i < n; i++) fn(i);
    return;
  }
  ThePool().Run(n, fn, threads);
}

}  // namespace whittle
