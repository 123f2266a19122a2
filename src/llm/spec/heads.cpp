#include "llm/spec/heads.hpp"

#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "io/dtype.hpp"
#include "io/gguf.hpp"
#include "llm/train/ops.hpp"

namespace ik::llm::spec {

HeadArch parse_head_arch(const std::string& s) {
  if (s == "medusa") return HeadArch::Medusa;
  if (s == "hydra") return HeadArch::Hydra;
  if (s == "hydra++") return HeadArch::HydraPlusPlus;
  ik::fail("unknown head architecture '{}' (expected medusa, hydra or hydra++)", s);
}

const char* head_arch_name(HeadArch a) {
  switch (a) {
    case HeadArch::Medusa: return "medusa";
    case HeadArch::Hydra: return "hydra";
    case HeadArch::HydraPlusPlus: return "hydra++";
  }
  return "?";
}

BaseInfo BaseInfo::of(const LlamaModel& m) {
  return {m.config().name, m.config().n_embd, m.config().n_vocab, m.config().n_layer};
}

int64_t DraftHeads::input_width(int i) const { return arch == HeadArch::Medusa ? d() : (i + 2) * d(); }

static Dense dense(int64_t n_in, int64_t n_out, bool bias) {
  Dense l;
  l.n_in = n_in;
  l.n_out = n_out;
  l.w.assign(size_t(n_in * n_out), 0.0f);
  if (bias) l.b.assign(size_t(n_out), 0.0f);
  return l;
}

DraftHeads DraftHeads::init(HeadArch arch, int n_heads, int n_blocks, LlamaModel& model) {
  IK_CHECK(n_heads >= 1 && n_heads <= 16, "number of heads must be in 1..16 (got {})", n_heads);
  IK_CHECK(n_blocks >= 1 && n_blocks <= 8, "blocks per head must be in 1..8 (got {})", n_blocks);
  DraftHeads h;
  h.arch = arch;
  h.base = BaseInfo::of(model);
  const int64_t d = h.d();
  for (int i = 0; i < n_heads; ++i) {
    Head head;
    for (int b = 0; b < n_blocks; ++b) {
      const int64_t n_in = b == 0 ? h.input_width(i) : d;
      HeadBlock blk;
      blk.fc = dense(n_in, d, true);
      if (n_in != d) {
        blk.proj = dense(n_in, d, false);
        for (int64_t r = 0; r < d; ++r) blk.proj.w[size_t(r * n_in + r)] = 1.0f;  // read h_t only
      }
      head.blocks.push_back(std::move(blk));
    }
    h.heads.push_back(std::move(head));
  }
  if (h.has_prefix()) {
    const LlamaConfig& c = model.config();
    h.prefix = train::BlockWeights::from_layer(model.layer(c.n_layer - 1), c);
    h.prefix_norm = model.output_norm();
  }
  return h;
}

std::vector<Head> zero_like(const std::vector<Head>& heads) {
  std::vector<Head> g = heads;
  for (auto& head : g)
    for (auto& blk : head.blocks) {
      for (Dense* l : {&blk.fc, &blk.proj}) {
        std::fill(l->w.begin(), l->w.end(), 0.0f);
        std::fill(l->b.begin(), l->b.end(), 0.0f);
      }
    }
  return g;
}

static backend::WeightMatrix view(const std::vector<float>& w, int64_t rows, int64_t cols) {
  return backend::WeightMatrix::prepare(io::DType::F32, rows, cols, w.data(), backend::WeightMatrix::Mode::Fast);
}

// y = x W^T (+ b) through the engine's matmul (a threaded gemv for one row, sgemm for more).
static void dense_forward(const Dense& l, const float* x, float* y, int64_t m) {
  backend::matmul(view(l.w, l.n_out, l.n_in), x, y, m);
  if (!l.b.empty())
    for (int64_t r = 0; r < m; ++r) backend::add_inplace(y + r * l.n_out, l.b.data(), l.n_out);
}

static float silu(float x) { return x / (1.0f + std::exp(-x)); }
static float silu_grad(float x) {
  const float s = 1.0f / (1.0f + std::exp(-x));
  return s * (1.0f + x * (1.0f - s));
}

void DraftHeads::forward(int i, const float* x, int64_t m, HeadActivations& a) const {
  const Head& head = heads.at(size_t(i));
  const int64_t d = this->d();
  const size_t nb = head.blocks.size();
  a.m = m;
  a.x.resize(nb);
  a.pre.resize(nb);
  a.act.resize(nb);
  const float* in = x;
  for (size_t b = 0; b < nb; ++b) {
    const HeadBlock& blk = head.blocks[b];
    a.x[b].assign(in, in + m * blk.fc.n_in);
    a.pre[b].resize(size_t(m * d));
    a.act[b].resize(size_t(m * d));
    dense_forward(blk.fc, a.x[b].data(), a.pre[b].data(), m);
    for (size_t j = 0; j < a.pre[b].size(); ++j) a.act[b][j] = silu(a.pre[b][j]);
    a.out.resize(size_t(m * d));
    if (blk.proj.n_out) {
      dense_forward(blk.proj, a.x[b].data(), a.out.data(), m);
    } else {
      std::memcpy(a.out.data(), a.x[b].data(), sizeof(float) * m * d);
    }
    backend::add_inplace(a.out.data(), a.act[b].data(), m * d);
    in = a.out.data();
  }
}

void DraftHeads::backward(int i, const HeadActivations& a, const float* dout, Head& g, float* dx) const {
  const Head& head = heads.at(size_t(i));
  const int64_t d = this->d(), m = a.m;
  std::vector<float> dy(dout, dout + m * d), dpre(size_t(m * d)), dprev;
  for (size_t b = head.blocks.size(); b-- > 0;) {
    const HeadBlock& blk = head.blocks[b];
    HeadBlock& gb = g.blocks[b];
    const int64_t n_in = blk.fc.n_in;
    for (size_t j = 0; j < dpre.size(); ++j) dpre[j] = dy[j] * silu_grad(a.pre[b][j]);
    float* dxb = nullptr;
    if (b > 0) {
      dprev.assign(size_t(m * n_in), 0.0f);
      dxb = dprev.data();
    } else {
      dxb = dx;
    }
    train::linear_backward(a.x[b].data(), blk.fc.w.data(), dpre.data(), dxb, gb.fc.w.data(), gb.fc.b.data(), m, n_in, d);
    if (blk.proj.n_out) {
      train::linear_backward(a.x[b].data(), blk.proj.w.data(), dy.data(), dxb, gb.proj.w.data(), nullptr, m, n_in, d);
    } else if (dxb) {
      backend::add_inplace(dxb, dy.data(), m * d);
    }
    if (b > 0) dy = dprev;
  }
}

// ---- the heads file ---------------------------------------------------------------------------

static void add_f32(io::GgufWriter& w, const std::string& name, const std::vector<float>& v,
                    std::vector<int64_t> shape) {
  w.add_tensor(name, shape, io::DType::F32, v.data(), v.size() * sizeof(float));
}

static std::vector<std::pair<std::string, std::vector<float> train::BlockWeights::*>> prefix_fields() {
  using W = train::BlockWeights;
  return {{"attn_norm", &W::attn_norm}, {"wq", &W::wq},         {"wk", &W::wk},      {"wv", &W::wv},
          {"wo", &W::wo},               {"ffn_norm", &W::ffn_norm}, {"w_gate", &W::w_gate}, {"w_up", &W::w_up},
          {"w_down", &W::w_down}};
}

void DraftHeads::save(const std::string& path) const {
  io::GgufWriter w;
  w.set_string("general.architecture", "inferkit-draft-heads");
  w.set_string("spec.arch", head_arch_name(arch));
  w.set_u32("spec.n_heads", uint32_t(heads.size()));
  w.set_u32("spec.n_blocks", uint32_t(heads.front().blocks.size()));
  w.set_string("spec.base.name", base.name);
  w.set_u64("spec.base.n_embd", uint64_t(base.n_embd));
  w.set_u64("spec.base.n_vocab", uint64_t(base.n_vocab));
  w.set_u64("spec.base.n_layer", uint64_t(base.n_layer));
  for (size_t i = 0; i < heads.size(); ++i)
    for (size_t b = 0; b < heads[i].blocks.size(); ++b) {
      const HeadBlock& blk = heads[i].blocks[b];
      const std::string p = "head." + std::to_string(i) + ".block." + std::to_string(b);
      add_f32(w, p + ".fc.weight", blk.fc.w, {blk.fc.n_in, blk.fc.n_out});
      add_f32(w, p + ".fc.bias", blk.fc.b, {blk.fc.n_out});
      if (blk.proj.n_out) add_f32(w, p + ".proj.weight", blk.proj.w, {blk.proj.n_in, blk.proj.n_out});
    }
  if (has_prefix()) {
    for (auto& [name, field] : prefix_fields()) add_f32(w, "prefix." + name, prefix.*field, {int64_t((prefix.*field).size())});
    add_f32(w, "prefix.output_norm", prefix_norm, {int64_t(prefix_norm.size())});
  }
  w.write(path);
}

// f32, or f16 / bf16 (a half-size copy made by tools/heads_to_f16.py).
static std::vector<float> read_f32(const io::GgufFile& f, const std::string& name, int64_t n) {
  const auto& t = f.tensor(name);
  const bool half = t.type == io::DType::F16 || t.type == io::DType::BF16;
  IK_CHECK((t.type == io::DType::F32 || half) && t.n_elements() == n,
           "heads file '{}': tensor '{}' should be f32 (or f16, bf16) with {} values", f.path(), name, n);
  std::vector<float> v(static_cast<size_t>(n));
  io::dequantize(t.type, t.data, v.data(), n);
  return v;
}

DraftHeads DraftHeads::load(const std::string& path) {
  io::GgufFile f = io::GgufFile::open(path);
  IK_CHECK(f.get_string("general.architecture", "") == "inferkit-draft-heads",
           "'{}' is not a draft-heads file (general.architecture is '{}')", path,
           f.get_string("general.architecture", ""));
  DraftHeads h;
  h.arch = parse_head_arch(f.get_string("spec.arch"));
  h.base.name = f.get_string("spec.base.name");
  h.base.n_embd = f.get_int("spec.base.n_embd");
  h.base.n_vocab = f.get_int("spec.base.n_vocab");
  h.base.n_layer = f.get_int("spec.base.n_layer");
  const int64_t n_heads = f.get_int("spec.n_heads"), n_blocks = f.get_int("spec.n_blocks");
  IK_CHECK(n_heads >= 1 && n_heads <= 16 && n_blocks >= 1 && n_blocks <= 8 && h.base.n_embd > 0,
           "heads file '{}': bad sizes (heads {}, blocks {}, hidden {})", path, n_heads, n_blocks, h.base.n_embd);
  const int64_t d = h.d();
  for (int i = 0; i < n_heads; ++i) {
    Head head;
    for (int b = 0; b < n_blocks; ++b) {
      const std::string p = "head." + std::to_string(i) + ".block." + std::to_string(b);
      const int64_t n_in = b == 0 ? h.input_width(i) : d;
      HeadBlock blk;
      blk.fc = dense(n_in, d, true);
      blk.fc.w = read_f32(f, p + ".fc.weight", n_in * d);
      blk.fc.b = read_f32(f, p + ".fc.bias", d);
      if (n_in != d) {
        blk.proj = dense(n_in, d, false);
        blk.proj.w = read_f32(f, p + ".proj.weight", n_in * d);
      }
      head.blocks.push_back(std::move(blk));
    }
    h.heads.push_back(std::move(head));
  }
  if (h.has_prefix()) {
    for (auto& [name, field] : prefix_fields()) {
      const auto& t = f.tensor("prefix." + name);
      h.prefix.*field = read_f32(f, "prefix." + name, t.n_elements());
    }
    h.prefix_norm = read_f32(f, "prefix.output_norm", d);
  }
  return h;
}

void DraftHeads::check_base(const LlamaModel& m) const {
  const BaseInfo b = BaseInfo::of(m);
  IK_CHECK(b.n_embd == base.n_embd, "draft heads were trained for '{}' with hidden size {}, but the model '{}' has "
           "hidden size {}", base.name, base.n_embd, b.name, b.n_embd);
  IK_CHECK(b.n_vocab == base.n_vocab, "draft heads were trained for '{}' with a vocabulary of {}, but the model '{}' "
           "has {}", base.name, base.n_vocab, b.name, b.n_vocab);
  IK_CHECK(b.name == base.name && b.n_layer == base.n_layer, "draft heads were trained for base model '{}' ({} "
           "layers), not for '{}' ({} layers)", base.name, base.n_layer, b.name, b.n_layer);
  if (has_prefix()) {
    const LlamaConfig& c = m.config();
    IK_CHECK(int64_t(prefix.wq.size()) == c.q_dim() * c.n_embd && int64_t(prefix.w_down.size()) == c.n_ff * c.n_embd &&
                 int64_t(prefix.wk.size()) == c.kv_dim() * c.n_embd,
             "draft heads: the Hydra++ prefix layer's shapes do not match the model '{}'", b.name);
  }
}

// ---- Hydra++ prefix layer at inference ---------------------------------------------------------

PrefixLayer::PrefixLayer(const DraftHeads& heads, const LlamaConfig& c, int64_t n_ctx)
    : cfg_(c),
      rope_(backend::Rope::make(c.head_dim, c.rope_base, c.rope_linear_factor, c.rope_freq_factors, c.rope_layout)),
      heads_(heads),
      cache_(1, n_ctx, c.kv_dim()) {
  IK_CHECK(heads.has_prefix(), "PrefixLayer: the heads have no prefix layer");
  const train::BlockWeights& w = heads.prefix;
  wq_ = view(w.wq, c.q_dim(), c.n_embd);
  wk_ = view(w.wk, c.kv_dim(), c.n_embd);
  wv_ = view(w.wv, c.kv_dim(), c.n_embd);
  wo_ = view(w.wo, c.n_embd, c.q_dim());
  w_gate_ = view(w.w_gate, c.n_ff, c.n_embd);
  w_up_ = view(w.w_up, c.n_ff, c.n_embd);
  w_down_ = view(w.w_down, c.n_embd, c.n_ff);
}

void PrefixLayer::append(const float* h, int64_t m, float* out) {
  const LlamaConfig& c = cfg_;
  const train::BlockWeights& w = heads_.prefix;
  IK_CHECK(cache_.n_past + m <= cache_.n_ctx(), "prefix layer: context full");
  const int64_t d = c.n_embd, kvd = c.kv_dim(), n_past = cache_.n_past;
  x_.assign(h, h + m * d);
  xn_.resize(size_t(m * d));
  q_.resize(size_t(m * c.q_dim()));
  attn_.resize(q_.size());
  hid_.resize(size_t(m * d));
  pos_.resize(size_t(m));
  for (int64_t i = 0; i < m; ++i) pos_[i] = int32_t(n_past + i);
  // Attention, K/V straight into the cache rows (as LlamaModel::attention_block).
  backend::rms_norm(x_.data(), w.attn_norm.data(), xn_.data(), m, d, c.rms_eps);
  float* k = cache_.k(0) + n_past * kvd;
  float* v = cache_.v(0) + n_past * kvd;
  backend::matmul(wq_, xn_.data(), q_.data(), m);
  backend::matmul(wk_, xn_.data(), k, m);
  backend::matmul(wv_, xn_.data(), v, m);
  rope_.apply(q_.data(), m, c.n_head, c.head_dim, pos_.data());
  rope_.apply(k, m, c.n_head_kv, c.head_dim, pos_.data());
  backend::attention(q_.data(), cache_.k(0), cache_.v(0), attn_.data(), m, n_past, c.n_head, c.n_head_kv, c.head_dim);
  backend::matmul(wo_, attn_.data(), hid_.data(), m);
  backend::add_inplace(x_.data(), hid_.data(), m * d);
  // MLP.
  gate_.resize(size_t(m * c.n_ff));
  up_.resize(gate_.size());
  backend::rms_norm(x_.data(), w.ffn_norm.data(), xn_.data(), m, d, c.rms_eps);
  backend::matmul(w_gate_, xn_.data(), gate_.data(), m);
  backend::matmul(w_up_, xn_.data(), up_.data(), m);
  backend::silu_mul(gate_.data(), up_.data(), gate_.data(), m * c.n_ff);
  backend::matmul(w_down_, gate_.data(), hid_.data(), m);
  backend::add_inplace(x_.data(), hid_.data(), m * d);
  cache_.n_past += m;
  backend::rms_norm(x_.data(), heads_.prefix_norm.data(), out, m, d, c.rms_eps);
}

}  // namespace ik::llm::spec
