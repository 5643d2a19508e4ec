// The Python module sinabs_fast._C. Importing it loads this library and so runs the op
// registrations (sinabs_fast.cpp, the kernels' files); the ops are reached through
// torch.ops.sinabs_fast. Its one function is the eager layers' entry to lif_forward: a planned
// call (sinabs_fast/layers/functional/lif.py, LIFCall) passes the five tensors that change from
// call to call and its constant rest as one tuple. The call goes through the dispatcher like
// torch.ops' (autograd, the device's kernel, dispatch modes), without the generic conversion of
// 17 Python arguments by the schema, which costs more than the op's own C++ host code on a
// tiny call.
#include <Python.h>
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/autograd/python_variable.h>

#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "op_handles.h"

namespace sinabs_fast {
namespace {

// The Python arguments, converted with a TypeError that names the one that does not fit.
const Tensor& tensor_arg(PyObject* obj, const char* name) {
  TORCH_CHECK_TYPE(THPVariable_Check(obj), "sinabs_fast._C.lif_forward: ", name,
                   " must be a Tensor, got ", Py_TYPE(obj)->tp_name);
  return THPVariable_Unpack(obj);
}

OptTensor optional_tensor_arg(PyObject* obj, const char* name) {
  if (obj == Py_None) return std::nullopt;
  return tensor_arg(obj, name);
}

bool bool_arg(PyObject* obj, const char* name) {
  TORCH_CHECK_TYPE(PyBool_Check(obj), "sinabs_fast._C.lif_forward: ", name,
                   " must be a bool, got ", Py_TYPE(obj)->tp_name);
  return obj == Py_True;
}

int64_t int_arg(PyObject* obj, const char* name) {
  TORCH_CHECK_TYPE(PyLong_Check(obj), "sinabs_fast._C.lif_forward: ", name,
                   " must be an int, got ", Py_TYPE(obj)->tp_name);
  const int64_t value = PyLong_AsLongLong(obj);
  if (value == -1 && PyErr_Occurred()) throw python_error();
  return value;
}

double float_arg(PyObject* obj, const char* name) {
  TORCH_CHECK_TYPE(PyFloat_Check(obj) || PyLong_Check(obj), "sinabs_fast._C.lif_forward: ", name,
                   " must be a float, got ", Py_TYPE(obj)->tp_name);
  const double value = PyFloat_AsDouble(obj);
  if (value == -1.0 && PyErr_Occurred()) throw python_error();
  return value;
}

std::vector<double> floats_arg(PyObject* obj, const char* name) {
  TORCH_CHECK_TYPE(PyList_Check(obj) || PyTuple_Check(obj), "sinabs_fast._C.lif_forward: ", name,
                   " must be a list of floats, got ", Py_TYPE(obj)->tp_name);
  PyObject* seq = obj;
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  std::vector<double> values(n);
  for (Py_ssize_t k = 0; k < n; ++k) values[k] = float_arg(PySequence_Fast_GET_ITEM(seq, k), name);
  return values;
}

// The op's outputs as a new tuple of tensors (an undefined one as None, as torch.ops gives).
template <typename Tuple>
PyObject* outputs_tuple(Tuple&& outputs) {
  constexpr size_t n = std::tuple_size_v<std::decay_t<Tuple>>;
  PyObject* result = PyTuple_New(n);
  if (result == nullptr) throw python_error();
  size_t k = 0;
  const auto wrap = [&](Tensor& t) {
    PyTuple_SET_ITEM(result, k++, THPVariable_Wrap(std::move(t)));
  };
  std::apply([&](auto&... t) { (wrap(t), ...); }, outputs);
  for (size_t j = 0; j < n; ++j) {
    if (PyTuple_GET_ITEM(result, j) == nullptr) {
      Py_DECREF(result);
      throw python_error();
    }
  }
  return result;
}

// The schema's arguments after alpha_syn, in its order (csrc/sinabs_fast.cpp).
constexpr Py_ssize_t kTailSize = 12;

// lif_forward(input, v_mem, i_syn, alpha_mem, alpha_syn, tail) -> the op's seven outputs, where
// tail = (norm_input, threshold, reset_amount, min_v_mem, spike_kind, max_spikes, reset_kind,
// reset_value, surrogate_kind, surrogate_params, keep_v_hat, keep_i_syn).
PyObject* lif_forward(PyObject* /*module*/, PyObject* const* args, Py_ssize_t nargs) {
  HANDLE_TH_ERRORS
  TORCH_CHECK_TYPE(nargs == 6, "sinabs_fast._C.lif_forward takes 6 arguments (input, v_mem, "
                   "i_syn, alpha_mem, alpha_syn, tail), got ", nargs);
  PyObject* tail = args[5];
  TORCH_CHECK_TYPE(PyTuple_Check(tail) && PyTuple_GET_SIZE(tail) == kTailSize,
                   "sinabs_fast._C.lif_forward: tail must be a tuple of ", kTailSize,
                   " (the schema's arguments after alpha_syn)");
  const auto item = [&](Py_ssize_t k) { return PyTuple_GET_ITEM(tail, k); };
  const Tensor& input = tensor_arg(args[0], "input");
  const Tensor& v_mem = tensor_arg(args[1], "v_mem");
  const OptTensor i_syn = optional_tensor_arg(args[2], "i_syn");
  const Tensor& alpha_mem = tensor_arg(args[3], "alpha_mem");
  const OptTensor alpha_syn = optional_tensor_arg(args[4], "alpha_syn");
  const bool norm_input = bool_arg(item(0), "norm_input");
  const Tensor& threshold = tensor_arg(item(1), "threshold");
  const Tensor& reset_amount = tensor_arg(item(2), "reset_amount");
  const OptTensor min_v_mem = optional_tensor_arg(item(3), "min_v_mem");
  const int64_t spike_kind = int_arg(item(4), "spike_kind");
  const double max_spikes = float_arg(item(5), "max_spikes");
  const int64_t reset_kind = int_arg(item(6), "reset_kind");
  const double reset_value = float_arg(item(7), "reset_value");
  const int64_t surrogate_kind = int_arg(item(8), "surrogate_kind");
  const std::vector<double> surrogate_params = floats_arg(item(9), "surrogate_params");
  const bool keep_v_hat = bool_arg(item(10), "keep_v_hat");
  const bool keep_i_syn = bool_arg(item(11), "keep_i_syn");
  ForwardResult out;
  {
    // As torch.ops: other Python threads run while the op does.
    pybind11::gil_scoped_release no_gil;
    out = op<LifForwardSig, kLifForward>().call(
        input, v_mem, i_syn, alpha_mem, alpha_syn, norm_input, threshold, reset_amount, min_v_mem,
        spike_kind, max_spikes, reset_kind, reset_value, surrogate_kind, surrogate_params,
        keep_v_hat, keep_i_syn);
  }
  return outputs_tuple(std::move(out));
  END_HANDLE_TH_ERRORS
}

PyMethodDef methods[] = {
    {"lif_forward", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(lif_forward)),
     METH_FASTCALL,
     "lif_forward(input, v_mem, i_syn, alpha_mem, alpha_syn, tail): the registered op "
     "sinabs_fast::lif_forward with the arguments after alpha_syn as one tuple."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace
}  // namespace sinabs_fast

extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT, "_C", "sinabs_fast operator library", -1, sinabs_fast::methods,
  };
  return PyModule_Create(&module_def);
}
}
