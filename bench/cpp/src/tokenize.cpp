#include "tokenize.hpp"

#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include <limits>

namespace peer {

namespace {

constexpr std::uint32_t kTokenMask = U_GC_L_MASK | U_GC_ND_MASK;

inline void append_utf8(std::string& out, UChar32 c) {
    char tmp[U8_MAX_LENGTH];
    int32_t len = 0;
    U8_APPEND_UNSAFE(tmp, len, c);
    out.append(tmp, static_cast<std::size_t>(len));
}

}  // namespace

bool Tokens::split(std::string_view utf8, std::size_t* n_chars) {
    buf_.clear();
    ends_.clear();
    // ICU's UTF-8 macros index with int32_t; a record is far below 2 GiB
    // (msgpack str32 caps a string at 4 GiB, so check).
    if (utf8.size() > static_cast<std::size_t>(std::numeric_limits<int32_t>::max())) return false;
    const auto* s = reinterpret_cast<const std::uint8_t*>(utf8.data());
    const auto length = static_cast<int32_t>(utf8.size());
    std::size_t chars = 0;
    bool in_token = false;
    for (int32_t i = 0; i < length;) {
        const std::uint8_t b = s[i];
        ++chars;
        if (b < 0x80) {  // ASCII: no table lookup
            ++i;
            if ((b >= 'a' && b <= 'z') || (b >= '0' && b <= '9')) {
                buf_.push_back(static_cast<char>(b));
                in_token = true;
            } else if (b >= 'A' && b <= 'Z') {
                buf_.push_back(static_cast<char>(b + ('a' - 'A')));
                in_token = true;
            } else if (in_token) {
                ends_.push_back(static_cast<std::uint32_t>(buf_.size()));
                in_token = false;
            }
            continue;
        }
        UChar32 c;
        U8_NEXT(s, i, length, c);
        if (c < 0) return false;  // ill-formed: overlong, surrogate, truncated...
        if (U_GET_GC_MASK(c) & kTokenMask) {
            append_utf8(buf_, u_tolower(c));
            in_token = true;
        } else if (in_token) {
            ends_.push_back(static_cast<std::uint32_t>(buf_.size()));
            in_token = false;
        }
    }
    if (in_token) ends_.push_back(static_cast<std::uint32_t>(buf_.size()));
    if (n_chars != nullptr) *n_chars = chars;
    return true;
}

}  // namespace peer
