// Python bindings of the feature computation (pybind11).

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <exception>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "features.hpp"
#include "tokenize.hpp"

namespace py = pybind11;

namespace {

std::string_view bytes_view(const py::handle& obj) {
    return std::string_view(PyBytes_AS_STRING(obj.ptr()), static_cast<std::size_t>(PyBytes_GET_SIZE(obj.ptr())));
}

// A 1-D C-contiguous array of T from a numpy array (or anything numpy can
// convert safely), or nothing for None. The caller keeps the array for the
// duration of the computation.
template <typename T>
std::optional<py::array_t<T, py::array::c_style>> candidate_array(const py::object& obj, const char* name,
                                                                  py::ssize_t n) {
    if (obj.is_none()) return std::nullopt;
    auto arr = py::array_t<T, py::array::c_style>::ensure(obj);
    if (!arr) {
        PyErr_Clear();
        throw py::value_error(std::string(name) + ": expected a 1-D array of " +
                              py::str(py::dtype::of<T>()).cast<std::string>());
    }
    if (arr.ndim() != 1 || arr.shape(0) != n)
        throw py::value_error(std::string(name) + ": expected a 1-D array with one entry per item (" +
                              std::to_string(n) + ")");
    return arr;
}

py::array_t<float> compute(const py::object& user, const py::object& items, const py::object& source,
                           const py::object& source_score, const py::object& source_rank, int threads) {
    if (!PyBytes_Check(user.ptr())) throw py::value_error("user must be MessagePack bytes");
    if (!PyList_Check(items.ptr()) && !PyTuple_Check(items.ptr()))
        throw py::value_error("items must be a list of MessagePack bytes");

    // Own a reference to every record: the list may be changed by another
    // Python thread while the GIL is released.
    const auto seq = py::reinterpret_borrow<py::sequence>(items);
    const py::ssize_t n = static_cast<py::ssize_t>(py::len(seq));
    std::vector<py::object> keep;
    std::vector<std::string_view> records;
    keep.reserve(static_cast<std::size_t>(n));
    records.reserve(static_cast<std::size_t>(n));
    for (py::ssize_t i = 0; i < n; ++i) {
        py::object rec = seq[i];
        if (!PyBytes_Check(rec.ptr()))
            throw py::value_error("item " + std::to_string(i) + ": expected MessagePack bytes, got " +
                                  std::string(Py_TYPE(rec.ptr())->tp_name));
        records.push_back(bytes_view(rec));
        keep.push_back(std::move(rec));
    }

    const auto src = candidate_array<std::int64_t>(source, "source", n);
    const auto score = candidate_array<double>(source_score, "source_score", n);
    const auto rank = candidate_array<std::int64_t>(source_rank, "source_rank", n);
    peer::Candidates cands;
    cands.source = src ? src->data() : nullptr;
    cands.score = score ? score->data() : nullptr;
    cands.rank = rank ? rank->data() : nullptr;

    py::array_t<float> out({n, static_cast<py::ssize_t>(peer::kNumFeatures)});
    float* dst = out.mutable_data();
    const std::string_view user_bytes = bytes_view(user);

    std::string error;
    bool no_memory = false;
    {
        py::gil_scoped_release release;
        try {
            peer::compute(user_bytes, records, cands, threads, dst);
        } catch (const std::bad_alloc&) {
            no_memory = true;
        } catch (const std::exception& e) {
            error = e.what();
            if (error.empty()) error = "invalid input";
        }
    }
    if (no_memory) throw std::bad_alloc();  // MemoryError
    if (!error.empty()) throw py::value_error(error);
    return out;
}

py::list tokenize(const std::string& text) {
    peer::Tokens tokens;
    if (!tokens.split(text)) throw py::value_error("text is not valid UTF-8");
    py::list out;
    for (std::size_t i = 0; i < tokens.size(); ++i) out.append(py::str(tokens[i].data(), tokens[i].size()));
    return out;
}

}  // namespace

PYBIND11_MODULE(pyfeat_cpp_peer, m) {
    m.doc() = "pyfeat's 77 features computed in C++ (msgpack-cxx, ICU), for the benchmarks";
    m.attr("n_features") = static_cast<int>(peer::kNumFeatures);
    m.def("feature_names", &peer::feature_names, "The column names, in order.");
    m.def("compute", &compute, py::arg("user"), py::arg("items"), py::arg("source") = py::none(),
          py::arg("source_score") = py::none(), py::arg("source_rank") = py::none(), py::arg("threads") = 0,
          R"doc(Feature matrix of one request: float32, shape (len(items), 77).

user and items are MessagePack bytes; source, source_score, source_rank are
optional 1-D arrays (int64, float64, int64) with one entry per item.
threads <= 0 uses every core. Bad input raises ValueError.)doc");
    m.def("tokenize", &tokenize, py::arg("text"),
          "Lowercase tokens: maximal runs of letters (L*) and decimal digits (Nd).");
}
