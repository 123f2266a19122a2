#pragma once
// Read-only memory-mapped file. Weights used as stored are read straight from the mapping.
#include <cstddef>
#include <cstdint>
#include <string>

namespace ik {

class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);  // throws ik::Error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Tell the kernel that [p, p + n), inside a mapping of this kind, will not be read again
  // (weights converted at load): whole pages in the range leave the resident set, and are
  // read back from the file if touched. Never call it on memory that is not a file mapping.
  static void drop_pages(const void* p, size_t n);

 private:
  void release();
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace ik
