#pragma once
// safetensors reader: u64 header length, JSON header {name: {dtype, shape, data_offsets}},
// then the raw tensor bytes. Memory-mapped; every offset and size is validated first.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mmap.hpp"
#include "io/dtype.hpp"

namespace ik::io {

struct SafeTensor {
  std::string name;
  DType type = DType::F32;     // F32, F16, BF16 (dequantizable); also F64, I64, I32, I16, I8
  std::vector<int64_t> shape;  // PyTorch order: shape.back() is contiguous (reverse of GGUF)
  const uint8_t* data = nullptr;  // points into the mapping
  uint64_t nbytes = 0;
  int64_t n_elements() const;
};

class SafetensorsFile {
 public:
  // Throws ik::Error naming the problem (and the file).
  static SafetensorsFile open(const std::string& path);
  static SafetensorsFile parse(const uint8_t* data, size_t size, const std::string& name = "<memory>");

  const std::string& path() const { return path_; }
  const std::vector<SafeTensor>& tensors() const { return tensors_; }  // in data-offset order
  const SafeTensor* find(const std::string& name) const;               // nullptr if absent
  const SafeTensor& tensor(const std::string& name) const;             // throws naming it
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // __metadata__
  std::shared_ptr<MappedFile> mapping() const { return file_; }

  // The tensor's values as f32 (F32/F16/BF16 only; throws otherwise).
  static std::vector<float> to_f32(const SafeTensor& t);

 private:
  std::shared_ptr<MappedFile> file_;
  std::string path_;
  std::vector<SafeTensor> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace ik::io
