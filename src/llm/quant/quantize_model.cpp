#include "llm/quant/quantize_model.hpp"

#include <cmath>
#include <memory>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "io/gguf.hpp"
#include "llm/quant/lut_format.hpp"

namespace ik::llm::quant {

bool is_block_matrix(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return false;
  for (const char* s : {".attn_q.weight", ".attn_k.weight", ".attn_v.weight", ".attn_output.weight",
                        ".ffn_gate.weight", ".ffn_up.weight", ".ffn_down.weight"}) {
    const std::string suffix = s;
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      return true;
  }
  return false;
}

static std::vector<float> make_table(const QuantizeOptions& opt, const std::vector<float>& w, int64_t rows,
                                     int64_t cols) {
  if (opt.table == "nf" || opt.table == "nfl") return nf_table(opt.bits);  // nfl: NF codes, scales trained after
  if (opt.table == "int") return int_table(opt.bits);
  if (opt.table == "kmeans") return kmeans_table(w.data(), rows, cols, opt.bits, opt.group, opt.ragged);
  fail("unknown table '{}' (valid: nf, int, kmeans, nfl)", opt.table);
}

QuantizeReport quantize_model(const std::string& in_path, const std::string& out_path, const QuantizeOptions& opt) {
  IK_CHECK(valid_bits(opt.bits), "unsupported bit width {} (valid: 2, 3, 4)", opt.bits);
  IK_CHECK(valid_group(opt.group), "unsupported group size {} (valid: 32, 64, 128, 256)", opt.group);
  IK_CHECK(opt.table == "nf" || opt.table == "int" || opt.table == "kmeans" || opt.table == "nfl",
           "unknown table '{}' (valid: nf, int, kmeans, nfl)", opt.table);
  IK_CHECK(in_path != out_path, "the output would overwrite the input '{}'", in_path);
  const auto in_file = std::make_shared<const io::GgufFile>(io::GgufFile::open(in_path));
  const io::GgufFile& in = *in_file;
  IK_CHECK(!is_lut_quantized(in),
           "'{}' is already LUT-quantized; quantize the original model instead (requantizing would stack two "
           "rounding errors)",
           in_path);

  // NFL: read the calibration text before any work, so a bad file fails at once.
  NflOptions nfl = opt.nfl;
  nfl.progress = opt.progress;
  if (opt.table == "nfl" && nfl.tokens.empty())
    nfl.tokens = calibration_tokens(in, nfl.calib_path, nfl.calib_tokens, nfl.seq_len);

  // Check every matrix before doing any work, so a bad group fails at once.
  std::vector<const io::GgufTensorInfo*> todo;
  for (const auto& t : in.tensors()) {
    if (!is_block_matrix(t.name)) continue;
    IK_CHECK(t.shape.size() == 2, "tensor '{}' is not a matrix", t.name);
    IK_CHECK(io::dtype_traits(t.type).supported, "tensor '{}' has type {}, which cannot be dequantized", t.name,
             io::dtype_name(t.type));
    check_format(opt.bits, opt.group, t.shape[0], "'" + t.name + "'", opt.ragged);
    todo.push_back(&t);
  }
  IK_CHECK(!todo.empty(), "'{}' has no transformer block matrices (blk.N.attn_q.weight, ...) to quantize", in_path);

  io::GgufWriter out;
  out.copy_metadata_from(in);
  out.set_string("inferkit.quant.format", "lut");
  out.set_u32("inferkit.quant.bits", uint32_t(opt.bits));
  out.set_u32("inferkit.quant.group", uint32_t(opt.group));
  out.set_bool("inferkit.quant.ragged", opt.ragged);
  out.set_string("inferkit.quant.table", opt.table);
  out.set_string("inferkit.quant.source_type", io::dtype_name(todo[0]->type));

  QuantizeReport rep;
  std::vector<std::pair<std::string, LutTensor>> quantized;
  Progress bar("quantize", todo.size(), opt.progress);
  for (const io::GgufTensorInfo* t : todo) {
    const int64_t cols = t->shape[0], rows = t->shape[1];
    std::vector<float> w(size_t(rows * cols));
    io::dequantize(t->type, t->data, w.data(), rows * cols);
    quantized.emplace_back(t->name, quantize(w.data(), rows, cols, opt.bits, opt.group,
                                             make_table(opt, w, rows, cols), opt.ragged));
    bar.set_note(t->name);
    bar.advance();
  }
  bar.finish();
  if (opt.table == "nfl") rep.nfl = learn_nfl_scales(in_file, quantized, nfl);

  double err2 = 0, ref2 = 0;
  size_t next = 0;
  for (const auto& t : in.tensors()) {
    if (!is_block_matrix(t.name)) {
      out.add_tensor(t.name, t.shape, t.type, t.data, t.nbytes);
      rep.tensors_copied++;
      continue;
    }
    const LutTensor& q = quantized[next++].second;  // same order as `todo`
    const int64_t cols = t.shape[0], rows = t.shape[1];
    std::vector<float> w(size_t(rows * cols)), back(w.size());
    io::dequantize(t.type, t.data, w.data(), rows * cols);
    dequantize(q, back.data());
    for (size_t i = 0; i < w.size(); ++i) {
      err2 += double(back[i] - w[i]) * (back[i] - w[i]);
      ref2 += double(w[i]) * w[i];
    }
    add_lut_tensor(out, t.name, q);
    rep.tensors_quantized++;
    rep.bytes_before += t.nbytes;
    rep.bytes_after += size_t(rows) * (cols * opt.bits / 8 + group_count(cols, opt.group) * 2) + q.table.size() * 4;
  }
  rep.rel_rmse = ref2 > 0 ? std::sqrt(err2 / ref2) : 0;
  out.write(out_path);
  return rep;
}

}  // namespace ik::llm::quant
