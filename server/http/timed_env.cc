#include "server/http/timed_env.h"

namespace branchdb::server::http {
namespace {

class TimedFile final : public WritableFile {
 public:
  TimedFile(std::unique_ptr<WritableFile> file, Clock* clock,
            const std::function<void(double)>* on_sync)
      : file_(std::move(file)), clock_(clock), on_sync_(on_sync) {}
  Status Append(std::string_view data) override { return file_->Append(data); }
  Status Sync() override {
    return Timed([&] { return file_->Sync(); });
  }
  // A write that syncs itself: timed as a sync (most of its time is one).
  Status AppendDurable(std::string_view data) override {
    return Timed([&] { return file_->AppendDurable(data); });
  }
  Status Close() override { return file_->Close(); }
  uint64_t Size() const override { return file_->Size(); }
  Status ExtendWithZeros(uint64_t end) override { return file_->ExtendWithZeros(end); }

 private:
  template <typename F>
  Status Timed(F f) {
    int64_t t0 = clock_->NowMonotonicNanos();
    Status s = f();
    (*on_sync_)(static_cast<double>(clock_->NowMonotonicNanos() - t0) / 1e9);
    return s;
  }

  std::unique_ptr<WritableFile> file_;
  Clock* clock_;
  const std::function<void(double)>* on_sync_;
};

}  // namespace

Result<std::unique_ptr<WritableFile>> TimedEnv::NewWritableFile(const std::string& path,
                                                                OpenMode mode) {
  auto f = target()->NewWritableFile(path, mode);
  if (!f.ok()) return f.status();
  return std::unique_ptr<WritableFile>(new TimedFile(std::move(*f), GetClock(), &on_sync_));
}

}  // namespace branchdb::server::http
