// timfusion: reading files that users name (weight files, calibration files,
// genotypes), which may come from someone else.
//
// Only regular files are read: a FIFO, a device (/dev/zero) or a folder is
// refused with a clear Error instead of hanging or reading forever, and a file
// larger than the caller's limit is refused before anything is allocated.
#pragma once
#include <cstdint>
#include <string>

namespace timfusion {

class InputFile {
 public:
  // Opens path for reading (O_NONBLOCK, so that opening a FIFO cannot block,
  // then fstat on the open descriptor, so that the checked file is the one
  // read). `what` names the file in messages ("calibration file").
  // Throws Error("<path>: <problem>").
  InputFile(const std::string& path, uint64_t max_bytes, const std::string& what);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Reads exactly n bytes at offset; Error if the file is shorter (it shrank).
  void read_at(uint64_t offset, void* dst, uint64_t n) const;
  std::string read_all() const;

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string path_, what_;
};

// The whole file as a string: InputFile(path, max_bytes, what).read_all().
std::string read_small_file(const std::string& path, uint64_t max_bytes, const std::string& what);

// "12.0 MiB", "64 KiB": sizes in messages.
std::string byte_size_str(uint64_t bytes);

}  // namespace timfusion
