#include "timfusion/input_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "timfusion/error.h"

namespace timfusion {

std::string byte_size_str(uint64_t bytes) {
  char buf[64];
  if (bytes >= (uint64_t{1} << 30))
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1u << 30));
  else if (bytes >= (1u << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1u << 20));
  else if (bytes >= (1u << 10))
    std::snprintf(buf, sizeof buf, "%.0f KiB", static_cast<double>(bytes) / (1u << 10));
  else
    std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(bytes));
  return buf;
}

InputFile::InputFile(const std::string& path, uint64_t max_bytes, const std::string& what)
    : path_(path), what_(what) {
  if (path.empty()) throw Error("no " + what + " given");
  fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd_ < 0) {
    const int err = errno;
    throw Error(path + ": cannot open the " + what + " (" + std::strerror(err) + ")");
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    const bool dir = S_ISDIR(st.st_mode);
    ::close(fd_);
    fd_ = -1;
    throw Error(path + ": the " + what + " is " +
                (dir ? "a folder" : "not a regular file (a FIFO, socket or device)") + ": name a file");
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ > max_bytes) {
    ::close(fd_);
    fd_ = -1;
    throw Error(path + ": the " + what + " is " + byte_size_str(size_) + ", more than the limit of " +
                byte_size_str(max_bytes) + ": not a " + what + ", or corrupt");
  }
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void InputFile::read_at(uint64_t offset, void* dst, uint64_t n) const {
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    ssize_t got = ::pread(fd_, p, n, static_cast<off_t>(offset));
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got < 0) throw Error(path_ + ": cannot read the " + what_ + " (" + std::strerror(errno) + ")");
    if (got == 0) throw Error(path_ + ": the " + what_ + " ended early (changed while being read?)");
    p += got;
    offset += static_cast<uint64_t>(got);
    n -= static_cast<uint64_t>(got);
  }
}

std::string InputFile::read_all() const {
  std::string s(size_, '\0');
  read_at(0, s.data(), size_);
  return s;
}

std::string read_small_file(const std::string& path, uint64_t max_bytes, const std::string& what) {
  return InputFile(path, max_bytes, what).read_all();
}

}  // namespace timfusion
