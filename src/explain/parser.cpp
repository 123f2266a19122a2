// Recursive-descent parser for the subset, following the JS grammar's precedence:
// ?: < ?? / || < && < equality < relational < additive < multiplicative < unary < postfix.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "explain/ast.hpp"

namespace ik::explain {

namespace {

enum class Tok { Number, String, Ident, Punct, End };

struct Token {
  Tok kind = Tok::End;
  std::string text;  // punctuator or identifier; the decoded value for strings
  double number = 0;
  int begin = 0, end = 0;
};

// Longest first, so that "===" wins over "==" and "=".
const char* kPuncts[] = {"===", "!==", "...", "**=", "<<=", ">>=", ">>>", "?" "?=", "&&=", "||=",
                         "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "=>", "++", "--", "**",
                         "<<", ">>", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=",
                         "(", ")", "[", "]", "{", "}", ",", ":", "?", ".", "!", "+", "-", "*",
                         "/", "<", ">", "=", "%", "&", "|", "^", "~", ";", "@", "#"};
const char* kSubsetPuncts[] = {"===", "!==", "==", "!=", "<=", ">=", "&&", "||", "??", "(", ")",
                               "[", "]", "{", "}", ",", ":", "?", ".", "!", "+", "-", "*", "/",
                               "<", ">"};
const int kMaxDepth = 200;

bool is_ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '$'; }
bool is_ident_char(char c) { return is_ident_start(c) || std::isdigit(static_cast<unsigned char>(c)); }

class Parser {
 public:
  explicit Parser(Program& prog) : prog_(prog), src_(prog.source) { advance(); }

  const Node* parse_all() {
    const Node* e = expression();
    if (tok_.kind != Tok::End) error_expected("end of input");
    return e;
  }

 private:
  Program& prog_;
  const std::string& src_;
  size_t pos_ = 0;
  Token tok_;
  int depth_ = 0;

  // ---- errors ----
  std::string where(int offset) const {
    int line = 1, col = 1;
    for (int i = 0; i < offset && i < static_cast<int>(src_.size()); i++) {
      if (src_[i] == '\n') line++, col = 1;
      else col++;
    }
    return fmt::format("{}:{}", line, col);
  }
  std::string describe(const Token& t) const {
    if (t.kind == Tok::End) return "end of input";
    return fmt::format("'{}'", src_.substr(t.begin, t.end - t.begin));
  }
  [[noreturn]] void error_expected(const std::string& what) const {
    fail("syntax error at {}: expected {} but found {}", where(tok_.begin), what, describe(tok_));
  }
  [[noreturn]] void outside(const std::string& what, int offset) const {
    fail("outside the subset at {}: {}", where(offset), what);
  }

  // ---- lexer ----
  void advance() {
    while (pos_ < src_.size() && std::isspace(static_cast<unsigned char>(src_[pos_]))) pos_++;
    tok_ = Token{};
    tok_.begin = static_cast<int>(pos_);
    if (pos_ >= src_.size()) {
      tok_.end = tok_.begin;
      return;
    }
    char c = src_[pos_];
    if (static_cast<unsigned char>(c) >= 0x80) outside("non-ASCII characters", tok_.begin);
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '.' && pos_ + 1 < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))))
      lex_number();
    else if (c == '"' || c == '\'') lex_string(c);
    else if (c == '`') outside("template literals", tok_.begin);
    else if (is_ident_start(c)) {
      while (pos_ < src_.size() && is_ident_char(src_[pos_])) pos_++;
      tok_.kind = Tok::Ident;
      tok_.text = src_.substr(tok_.begin, pos_ - tok_.begin);
    } else {
      for (const char* p : kPuncts) {
        size_t n = std::strlen(p);
        if (src_.compare(pos_, n, p) == 0) {
          bool ok = false;
          for (const char* q : kSubsetPuncts) ok |= std::strcmp(p, q) == 0;
          if (!ok) outside(fmt::format("operator '{}'", p), tok_.begin);
          pos_ += n;
          tok_.kind = Tok::Punct;
          tok_.text = p;
          break;
        }
      }
      if (tok_.kind != Tok::Punct) fail("syntax error at {}: unexpected character '{}'", where(tok_.begin), c);
    }
    tok_.end = static_cast<int>(pos_);
  }

  void lex_number() {
    size_t start = pos_;
    tok_.kind = Tok::Number;
    if (src_[pos_] == '0' && pos_ + 1 < src_.size() && std::strchr("xXoObB", src_[pos_ + 1])) {
      int base = std::strchr("xX", src_[pos_ + 1]) ? 16 : std::strchr("oO", src_[pos_ + 1]) ? 8 : 2;
      pos_ += 2;
      size_t digits = 0;
      while (pos_ < src_.size() && std::isxdigit(static_cast<unsigned char>(src_[pos_]))) {
        int d = std::isdigit(static_cast<unsigned char>(src_[pos_])) ? src_[pos_] - '0'
                                                                     : std::tolower(src_[pos_]) - 'a' + 10;
        if (d >= base) break;
        tok_.number = tok_.number * base + d;
        pos_++, digits++;
      }
      if (!digits) fail("syntax error at {}: expected digits after '{}'", where(pos_), src_.substr(start, 2));
    } else {
      if (src_[pos_] == '0' && pos_ + 1 < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1])))
        outside("legacy octal literals (leading zero)", tok_.begin);
      while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) pos_++;
      if (pos_ < src_.size() && src_[pos_] == '.') {
        pos_++;
        while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) pos_++;
      }
      if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
        size_t save = pos_++;
        if (pos_ < src_.size() && (src_[pos_] == '+' || src_[pos_] == '-')) pos_++;
        if (pos_ >= src_.size() || !std::isdigit(static_cast<unsigned char>(src_[pos_])))
          fail("syntax error at {}: expected exponent digits after '{}'", where(save), src_.substr(start, pos_ - start));
        while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) pos_++;
      }
      tok_.number = std::strtod(src_.substr(start, pos_ - start).c_str(), nullptr);
    }
    if (pos_ < src_.size() && src_[pos_] == '_') outside("numeric separators", static_cast<int>(pos_));
    if (pos_ < src_.size() && src_[pos_] == 'n') outside("BigInt literals", static_cast<int>(start));
    if (pos_ < src_.size() && (is_ident_char(src_[pos_])))
      fail("syntax error at {}: identifier starts immediately after a number", where(pos_));
  }

  void lex_string(char q) {
    pos_++;
    std::string s;
    while (true) {
      if (pos_ >= src_.size() || src_[pos_] == '\n')
        fail("syntax error at {}: expected closing {} of the string", where(pos_), q);
      char c = src_[pos_++];
      if (c == q) break;
      if (static_cast<unsigned char>(c) >= 0x80) outside("non-ASCII characters", static_cast<int>(pos_ - 1));
      if (c != '\\') {
        s += c;
        continue;
      }
      if (pos_ >= src_.size()) fail("syntax error at {}: expected an escape character", where(pos_));
      char e = src_[pos_++];
      switch (e) {
        case 'n': s += '\n'; break;
        case 't': s += '\t'; break;
        case 'r': s += '\r'; break;
        case 'b': s += '\b'; break;
        case 'f': s += '\f'; break;
        case 'v': s += '\v'; break;
        case '0':
          if (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_])))
            outside("octal escapes", static_cast<int>(pos_ - 2));
          s += '\0';
          break;
        case '\\': case '\'': case '"': s += e; break;
        case 'u': case 'x': {
          int n = e == 'u' ? 4 : 2;
          if (pos_ + n > src_.size() || !std::all_of(src_.begin() + pos_, src_.begin() + pos_ + n,
                                                    [](char h) { return std::isxdigit(static_cast<unsigned char>(h)); }))
            fail("syntax error at {}: expected {} hex digits after \\{}", where(pos_), n, e);
          int code = std::stoi(src_.substr(pos_, n), nullptr, 16);
          if (code >= 0x80) outside("non-ASCII characters", static_cast<int>(pos_ - 2));
          s += static_cast<char>(code);
          pos_ += n;
          break;
        }
        default:
          if (std::isdigit(static_cast<unsigned char>(e))) outside("octal escapes", static_cast<int>(pos_ - 2));
          s += e;  // identity escape
      }
    }
    tok_.kind = Tok::String;
    tok_.text = std::move(s);
  }

  // ---- helpers ----
  bool at(const char* p) const { return tok_.kind == Tok::Punct && tok_.text == p; }
  bool at_ident(const char* name) const { return tok_.kind == Tok::Ident && tok_.text == name; }
  void expect(const char* p) {
    if (!at(p)) error_expected(fmt::format("'{}'", p));
    advance();
  }
  const Node* make(Op op, int begin, std::vector<const Node*> kids) {
    Node n;
    n.op = op;
    n.begin = begin;
    n.end = kids.empty() ? begin : kids.back()->end;
    n.kids = std::move(kids);
    return prog_.add(std::move(n));
  }
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& p_) : p(p_) {
      if (++p.depth_ > kMaxDepth) fail("expression nested deeper than {} levels", kMaxDepth);
    }
    ~DepthGuard() { p.depth_--; }
  };

  // ---- grammar ----
  const Node* expression() {
    DepthGuard guard(*this);
    int begin = tok_.begin;
    const Node* c = short_circuit();
    if (!at("?")) return c;
    advance();
    const Node* t = expression();
    expect(":");
    const Node* f = expression();
    return make(Op::Cond, begin, {c, t, f});
  }

  // JS forbids mixing ?? with && or || unless parenthesized.
  const Node* short_circuit() {
    int begin = tok_.begin;
    const Node* left = logical_or();
    if (!at("??")) return left;
    if ((left->op == Op::And || left->op == Op::Or) && !left->parenthesized)
      fail("syntax error at {}: ?? cannot be mixed with && or || without parentheses", where(tok_.begin));
    while (at("??")) {
      advance();
      left = make(Op::Coalesce, begin, {left, binary(0)});
    }
    if (at("&&") || at("||"))
      fail("syntax error at {}: ?? cannot be mixed with && or || without parentheses", where(tok_.begin));
    return left;
  }

  const Node* logical_or() {
    int begin = tok_.begin;
    const Node* left = logical_and();
    while (at("||")) {
      advance();
      left = make(Op::Or, begin, {left, logical_and()});
    }
    return left;
  }

  const Node* logical_and() {
    int begin = tok_.begin;
    const Node* left = binary(0);
    while (at("&&")) {
      advance();
      left = make(Op::And, begin, {left, binary(0)});
    }
    return left;
  }

  // Left-associative binary levels, loosest first: equality, relational, additive, multiplicative.
  const Node* binary(int level) {
    static const std::vector<std::pair<const char*, Op>> levels[4] = {
        {{"==", Op::Eq}, {"!=", Op::Ne}, {"===", Op::StrictEq}, {"!==", Op::StrictNe}},
        {{"<", Op::Lt}, {">", Op::Gt}, {"<=", Op::Le}, {">=", Op::Ge}},
        {{"+", Op::Add}, {"-", Op::Sub}},
        {{"*", Op::Mul}, {"/", Op::Div}}};
    if (level == 4) return unary();
    int begin = tok_.begin;
    const Node* left = binary(level + 1);
    while (true) {
      if (level == 1 && (at_ident("in") || at_ident("instanceof")))
        outside(fmt::format("operator '{}'", tok_.text), tok_.begin);
      const std::pair<const char*, Op>* hit = nullptr;
      for (auto& entry : levels[level])
        if (at(entry.first)) hit = &entry;
      if (!hit) return left;
      advance();
      left = make(hit->second, begin, {left, binary(level + 1)});
    }
  }

  const Node* unary() {
    DepthGuard guard(*this);
    int begin = tok_.begin;
    Op op;
    if (at_ident("typeof")) op = Op::Typeof;
    else if (at("!")) op = Op::Not;
    else if (at("+")) op = Op::Plus;
    else if (at("-")) op = Op::Neg;
    else if (at_ident("void") || at_ident("delete") || at_ident("await"))
      outside(fmt::format("operator '{}'", tok_.text), tok_.begin);
    else return postfix();
    advance();
    return make(op, begin, {unary()});
  }

  const Node* postfix() {
    int begin = tok_.begin;
    const Node* e = primary();
    while (true) {
      if (at("[")) {
        advance();
        const Node* key = expression();
        Node* n = const_cast<Node*>(make(Op::Index, begin, {e, key}));
        n->end = tok_.end;
        expect("]");
        e = n;
      } else if (at(".")) {
        advance();
        if (tok_.kind != Tok::Ident) error_expected("a property name");
        std::string name = tok_.text;
        int name_end = tok_.end;
        advance();
        if (at("(")) {
          if (name != "sort") outside(fmt::format("method call .{}()", name), begin);
          advance();
          if (!at(")")) outside("sort() with a comparator", tok_.begin);
          Node* n = const_cast<Node*>(make(Op::Sort, begin, {e}));
          n->end = tok_.end;
          advance();
          e = n;
        } else {
          Node* n = const_cast<Node*>(make(Op::Member, begin, {e}));
          n->keys = {name};
          n->end = name_end;
          e = n;
        }
      } else if (at("(")) {
        outside("function calls other than String(x), Number(x) and .sort()", tok_.begin);
      } else {
        return e;
      }
    }
  }

  const Node* literal(Value v) {
    Node n;
    n.literal = std::move(v);
    n.begin = tok_.begin;
    n.end = tok_.end;
    advance();
    return prog_.add(std::move(n));
  }

  const Node* primary() {
    DepthGuard guard(*this);
    int begin = tok_.begin;
    switch (tok_.kind) {
      case Tok::Number: return literal(Value::of(tok_.number));
      case Tok::String: return literal(Value::of(tok_.text));
      case Tok::End: error_expected("an expression");
      case Tok::Ident: return identifier();
      case Tok::Punct: break;
    }
    if (at("(")) {
      advance();
      Node* e = const_cast<Node*>(expression());
      if (at(",")) outside("the comma operator", tok_.begin);
      expect(")");
      // Keep the node but widen its span to the parentheses for explanations.
      e->parenthesized = true;
      return e;
    }
    if (at("[")) {
      advance();
      std::vector<const Node*> elems;
      while (!at("]")) {
        if (at(",")) outside("array holes", tok_.begin);
        elems.push_back(expression());
        if (!at("]") && !at(",")) error_expected("',' or ']'");
        if (at(",")) advance();
      }
      Node* n = const_cast<Node*>(make(Op::ArrayLit, begin, std::move(elems)));
      n->end = tok_.end;
      advance();
      return n;
    }
    if (at("{")) return object_literal();
    error_expected("an expression");
  }

  const Node* object_literal() {
    int begin = tok_.begin;
    advance();
    std::vector<const Node*> values;
    std::vector<std::string> keys;
    while (!at("}")) {
      std::string key;
      if (tok_.kind == Tok::Ident || tok_.kind == Tok::String) key = tok_.text;
      else if (tok_.kind == Tok::Number) key = number_to_string(tok_.number);
      else if (at("[")) outside("computed property names", tok_.begin);
      else error_expected("a property name");
      if (key == "__proto__") outside("the __proto__ property", tok_.begin);
      advance();
      if (!at(":")) error_expected("':' (shorthand properties and methods are outside the subset)");
      advance();
      keys.push_back(key);
      values.push_back(expression());
      if (!at("}") && !at(",")) error_expected("',' or '}'");
      if (at(",")) advance();
    }
    Node* n = const_cast<Node*>(make(Op::ObjectLit, begin, std::move(values)));
    n->keys = std::move(keys);
    n->end = tok_.end;
    advance();
    return n;
  }

  const Node* identifier() {
    const std::string name = tok_.text;
    int begin = tok_.begin;
    if (name == "undefined") return literal(Value::undefined());
    if (name == "null") return literal(Value::null());
    if (name == "true") return literal(Value::of(true));
    if (name == "false") return literal(Value::of(false));
    if (name == "NaN") return literal(Value::of(NAN));
    if (name == "Infinity") return literal(Value::of(INFINITY));
    if (name == "String" || name == "Number") {
      advance();
      if (!at("(")) outside(fmt::format("{} other than as the call {}(x)", name, name), begin);
      advance();
      Node n;
      n.op = name == "String" ? Op::StringCall : Op::NumberCall;
      n.begin = begin;
      if (at(")")) n.call_without_arg = true;
      else n.kids = {expression()};
      if (at(",")) outside(fmt::format("{}() with more than one argument", name), tok_.begin);
      n.end = tok_.end;
      expect(")");
      return prog_.add(std::move(n));
    }
    static const char* keywords[] = {"new", "function", "this", "class", "var", "let", "const",
                                     "if", "for", "while", "return", "yield", "async", "super",
                                     "import", "typeof", "void", "delete", "in", "instanceof"};
    for (const char* k : keywords)
      if (name == k) outside(fmt::format("'{}'", name), begin);
    outside(fmt::format("identifier '{}' (no variables or globals besides undefined, NaN, Infinity, "
                        "String and Number)", name), begin);
  }
};

}  // namespace

Program parse(const std::string& source) {
  Program prog;
  prog.source = source;
  Parser parser(prog);
  prog.root = parser.parse_all();
  return prog;
}

}  // namespace ik::explain
