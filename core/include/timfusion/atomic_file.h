// timfusion: writing output files atomically and safely.
//
// A file is written under a fresh, unpredictable name in the target's own
// folder (".<name>.tmp-XXXXXXXXXXXX"), created with O_CREAT|O_EXCL|O_NOFOLLOW
// (a name someone planted, file or symlink, is never opened: another name is
// drawn), then renamed over the target. Readers see the old or the new file,
// never half of one; a crash leaves at most a stray temporary file; a symlink
// planted at the target is replaced, not followed.
#pragma once
#include <cstddef>
#include <string>

namespace timfusion {

class AtomicFile {
 public:
  // Creates the temporary file; throws Error("<path>: cannot write (...)").
  explicit AtomicFile(const std::string& path);
  // Removes the temporary file unless commit() succeeded.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);  // throws Error (disk full, ...)
  // Closes and renames over the target; throws Error.
  void commit();
  const std::string& temp_path() const { return tmp_; }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// The whole content at once: AtomicFile + write + commit.
void write_file_atomic(const std::string& path, const void* data, size_t n);
inline void write_file_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

}  // namespace timfusion
