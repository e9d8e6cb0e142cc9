// Title and query tokenization, shared by every feature that reads text.
//
// A token is a maximal run of letters (Unicode general category L*) and
// decimal digits (Nd); every other character separates tokens. Each
// character is lowercased with Unicode's simple (one-to-one) case mapping.
// Character properties come from ICU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace peer {

// The tokens of one text, kept back to back in one buffer so that a worker
// tokenizes thousands of titles without allocating.
class Tokens {
public:
    // Splits utf8 into tokens, replacing the previous contents. Returns false
    // if utf8 is not well-formed UTF-8. n_chars receives the number of code
    // points of the text.
    bool split(std::string_view utf8, std::size_t* n_chars = nullptr);

    std::size_t size() const { return ends_.size(); }
    std::string_view operator[](std::size_t i) const {
        const std::size_t start = i == 0 ? 0 : ends_[i - 1];
        return std::string_view(buf_).substr(start, ends_[i] - start);
    }

private:
    std::string buf_;                 // the tokens' UTF-8 bytes, back to back
    std::vector<std::uint32_t> ends_;  // end offset of each token in buf_
};

}  // namespace peer
