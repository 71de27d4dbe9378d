#include "timfusion/atomic_file.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "timfusion/error.h"

namespace timfusion {

namespace {

// 12 characters from 62: guessing one is hopeless, and O_EXCL makes a guess harmless anyway.
std::string random_suffix() {
  static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char bytes[12];
  if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
    std::random_device rd;  // getrandom unavailable (very old kernel): still unpredictable
    for (auto& b : bytes) b = static_cast<unsigned char>(rd());
  }
  std::string s;
  for (unsigned char b : bytes) s += kChars[b % 62];
  return s;
}

}  // namespace

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (name.empty()) throw Error(path + ": cannot write (the path names a folder, not a file)");
  for (int attempt = 0; attempt < 100; ++attempt) {
    tmp_ = dir + "." + name + ".tmp-" + random_suffix();
    // 0666 & ~umask, as any other output file; O_EXCL|O_NOFOLLOW: never an existing file or link.
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd_ >= 0) return;
    if (errno != EEXIST) break;
  }
  const int err = errno;
  throw Error(path + ": cannot write (" + std::strerror(err) + ")");
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = w < 0 ? errno : ENOSPC;
      throw Error(path_ + ": write failed (" + std::strerror(err) + ")");
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void AtomicFile::commit() {
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const int err = errno;
    throw Error(path_ + ": write failed (" + std::strerror(err) + ")");
  }
  // rename() replaces a symlink at path_ itself; it never writes through it.
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    throw Error(path_ + ": cannot rename the temporary file into place (" + std::strerror(err) + ")");
  }
  committed_ = true;
}

void write_file_atomic(const std::string& path, const void* data, size_t n) {
  AtomicFile f(path);
  f.write(data, n);
  f.commit();
}

}  // namespace timfusion
