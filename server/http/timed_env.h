// TimedEnv: an EnvWrapper that reports the latency of every WritableFile::Sync
// (fdatasync) to a callback, so /metrics can show fsync latency of the page
// stores without the storage layer knowing about metrics.
//
// Thread-safety: as the wrapped Env.
#ifndef BRANCHDB_SERVER_HTTP_TIMED_ENV_H_
#define BRANCHDB_SERVER_HTTP_TIMED_ENV_H_

#include <functional>
#include <memory>
#include <string>

#include "base/env.h"

namespace branchdb::server::http {

class TimedEnv final : public EnvWrapper {
 public:
  // on_sync(seconds) runs after every Sync() and AppendDurable() (a write
  // that syncs itself), successful or not.
  TimedEnv(Env* target, std::function<void(double seconds)> on_sync)
      : EnvWrapper(target), on_sync_(std::move(on_sync)) {}

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        OpenMode mode) override;

 private:
  std::function<void(double)> on_sync_;
};

}  // namespace branchdb::server::http

#endif  // BRANCHDB_SERVER_HTTP_TIMED_ENV_H_
