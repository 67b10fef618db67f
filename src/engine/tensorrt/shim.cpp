// stylerd TensorRT shim: the dozen TensorRT 8.5 runtime calls the Rust engine needs, behind
// a C ABI (see ffi declarations in shim.rs). It owns one runtime, one deserialized engine and
// one execution context per handle, and a logger that keeps the last error text. It never
// allocates device memory and never synchronizes: buffers and the stream belong to Rust.
// Built by build.rs only with the `tensorrt` feature and when the headers are found.

#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

namespace {

class Logger final : public nvinfer1::ILogger {
public:
    void log(Severity severity, const char* msg) noexcept override {
        if (severity <= Severity::kERROR && msg != nullptr) {
            std::lock_guard<std::mutex> lock(mutex_);
            last_ = msg;
        }
    }
    std::string last() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return last_;
    }
    void clear() {
        std::lock_guard<std::mutex> lock(mutex_);
        last_.clear();
    }

private:
    mutable std::mutex mutex_;
    std::string last_;
};

void copy_text(const std::string& text, char* out, size_t out_len) {
    if (out == nullptr || out_len == 0) {
        return;
    }
    size_t n = text.size() < out_len - 1 ? text.size() : out_len - 1;
    std::memcpy(out, text.data(), n);
    out[n] = '\0';
}

}  // namespace

struct StylerdTrt {
    Logger logger;
    nvinfer1::IRuntime* runtime = nullptr;
    nvinfer1::ICudaEngine* engine = nullptr;
    nvinfer1::IExecutionContext* context = nullptr;
    std::string error;

    ~StylerdTrt() {
        delete context;
        delete engine;
        delete runtime;
    }

    int fail(const std::string& what) {
        std::string logged = logger.last();
        error = logged.empty() ? what : what + ": " + logged;
        return 0;
    }
};

extern "C" {

// major * 1000 + minor * 100 + patch, e.g. 8502 for 8.5.2.
int32_t stylerd_trt_version(void) { return getInferLibVersion(); }

StylerdTrt* stylerd_trt_open(const void* plan, size_t len, char* err, size_t err_len) {
    StylerdTrt* h = new (std::nothrow) StylerdTrt();
    if (h == nullptr) {
        copy_text("out of memory", err, err_len);
        return nullptr;
    }
    h->runtime = nvinfer1::createInferRuntime(h->logger);
    if (h->runtime == nullptr) {
        h->fail("cannot create the TensorRT runtime");
    } else {
        h->engine = h->runtime->deserializeCudaEngine(plan, len);
        if (h->engine == nullptr) {
            h->fail("cannot deserialize the plan");
        } else {
            h->context = h->engine->createExecutionContext();
            if (h->context == nullptr) {
                h->fail("cannot create an execution context");
            }
        }
    }
    if (h->context == nullptr) {
        copy_text(h->error, err, err_len);
        delete h;
        return nullptr;
    }
    return h;
}

void stylerd_trt_close(StylerdTrt* h) { delete h; }

int32_t stylerd_trt_num_io(const StylerdTrt* h) { return h->engine->getNbIOTensors(); }

// Fills name, direction, data type (nvinfer1::DataType), whether the format is linear and
// the engine's shape (-1 for dynamic dimensions). Returns 0 when `i` is out of range.
int32_t stylerd_trt_io(const StylerdTrt* h, int32_t i, const char** name, int32_t* is_input,
                       int32_t* dtype, int32_t* linear, int32_t* nb_dims, int64_t dims[8]) {
    if (i < 0 || i >= h->engine->getNbIOTensors()) {
        return 0;
    }
    const char* n = h->engine->getIOTensorName(i);
    *name = n;
    *is_input = h->engine->getTensorIOMode(n) == nvinfer1::TensorIOMode::kINPUT ? 1 : 0;
    *dtype = static_cast<int32_t>(h->engine->getTensorDataType(n));
    *linear = h->engine->getTensorFormat(n) == nvinfer1::TensorFormat::kLINEAR ? 1 : 0;
    nvinfer1::Dims d = h->engine->getTensorShape(n);
    *nb_dims = d.nbDims;
    for (int32_t k = 0; k < d.nbDims && k < 8; ++k) {
        dims[k] = d.d[k];
    }
    return 1;
}

int32_t stylerd_trt_set_input_shape(StylerdTrt* h, const char* name, int32_t nb_dims,
                                    const int64_t* dims) {
    if (nb_dims < 0 || nb_dims > nvinfer1::Dims::MAX_DIMS) {
        return h->fail("too many dimensions");
    }
    nvinfer1::Dims d{};
    d.nbDims = nb_dims;
    for (int32_t k = 0; k < nb_dims; ++k) {
        d.d[k] = static_cast<int32_t>(dims[k]);
    }
    h->logger.clear();
    if (!h->context->setInputShape(name, d)) {
        return h->fail(std::string("setInputShape(") + name + ") refused the shape");
    }
    return 1;
}

// The context's shape of a tensor once the input shapes are set.
int32_t stylerd_trt_context_shape(const StylerdTrt* h, const char* name, int32_t* nb_dims,
                                  int64_t dims[8]) {
    nvinfer1::Dims d = h->context->getTensorShape(name);
    *nb_dims = d.nbDims;
    for (int32_t k = 0; k < d.nbDims && k < 8; ++k) {
        dims[k] = d.d[k];
    }
    return d.nbDims >= 0 ? 1 : 0;
}

int32_t stylerd_trt_set_address(StylerdTrt* h, const char* name, void* ptr) {
    h->logger.clear();
    if (!h->context->setTensorAddress(name, ptr)) {
        return h->fail(std::string("setTensorAddress(") + name + ") failed");
    }
    return 1;
}

int32_t stylerd_trt_enqueue(StylerdTrt* h, void* stream) {
    h->logger.clear();
    if (!h->context->enqueueV3(static_cast<cudaStream_t>(stream))) {
        return h->fail("enqueueV3 failed");
    }
    return 1;
}

const char* stylerd_trt_last_error(const StylerdTrt* h) { return h->error.c_str(); }

}  // extern "C"
