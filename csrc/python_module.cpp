// The Python module sinabs_fast._C. Importing it loads this library and so runs the op
// registrations (sinabs_fast.cpp, the kernels' files); the ops are reached through
// torch.ops.sinabs_fast, and, for eager calls, through call() below (OpSchema.direct in
// sinabs_fast/ops/schema.py): the op on a tuple of its positional arguments, converted by the
// kinds read once from its schema, then called through the dispatcher as torch.ops calls it
// (autograd, the device's kernel, dispatch modes). What it skips is torch.ops' generic
// per-call conversion of every Python argument by the schema, which costs more than a tiny
// call's C++ host code and kernel (docs/design.md, "Host cost of a call").
#include <Python.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/autograd/python_variable.h>

#include <deque>
#include <string>
#include <vector>

namespace sinabs_fast {
namespace {

using at::Tensor;

// The argument types the sinabs_fast schemas use.
enum class ArgKind { kTensor, kOptionalTensor, kBool, kInt, kFloat, kFloatList };

ArgKind kind_of(const c10::Argument& argument, const std::string& op) {
  const auto& type = argument.type();
  switch (type->kind()) {
    case c10::TypeKind::TensorType:
      return ArgKind::kTensor;
    case c10::TypeKind::BoolType:
      return ArgKind::kBool;
    case c10::TypeKind::IntType:
      return ArgKind::kInt;
    case c10::TypeKind::FloatType:
      return ArgKind::kFloat;
    case c10::TypeKind::OptionalType:
      if (type->expectRef<c10::OptionalType>().getElementType()->kind() ==
          c10::TypeKind::TensorType) {
        return ArgKind::kOptionalTensor;
      }
      break;
    case c10::TypeKind::ListType:
      if (type->expectRef<c10::ListType>().getElementType()->kind() ==
          c10::TypeKind::FloatType) {
        return ArgKind::kFloatList;
      }
      break;
    default:
      break;
  }
  TORCH_CHECK(false, "sinabs_fast._C: ", op, "'s argument ", argument.name(), " has type ",
              type->str(), ", which call() does not convert");
}

struct DirectOp {
  c10::OperatorHandle handle;
  std::string name;
  std::vector<std::string> names;  // the arguments', for the errors
  std::vector<ArgKind> kinds;
  size_t returns;
};

// The ops registered with op_index, by index. Read and extended with the GIL held; a deque, so
// that a call which released the GIL keeps its entry while another thread registers an op.
std::deque<DirectOp>& direct_ops() {
  static auto* ops = new std::deque<DirectOp>();
  return *ops;
}

// torch.nn.Parameter, whose __torch_function__ is disabled: a Parameter argument is taken like a
// plain tensor, any other tensor subclass is left to torch.ops.
PyTypeObject* parameter_type() {
  static PyTypeObject* type = [] {
    PyObject* module = PyImport_ImportModule("torch.nn.parameter");
    if (module == nullptr) throw python_error();
    PyObject* parameter = PyObject_GetAttrString(module, "Parameter");
    Py_DECREF(module);
    if (parameter == nullptr) throw python_error();
    return reinterpret_cast<PyTypeObject*>(parameter);  // kept for the process
  }();
  return type;
}

// op_index(name) -> the index of sinabs_fast::<name> for call().
PyObject* op_index(PyObject* /*module*/, PyObject* name) {
  HANDLE_TH_ERRORS
  TORCH_CHECK_TYPE(PyUnicode_Check(name), "sinabs_fast._C.op_index: name must be a str");
  const std::string op = PyUnicode_AsUTF8(name);
  auto& ops = direct_ops();
  for (size_t k = 0; k < ops.size(); ++k) {
    if (ops[k].name == op) return PyLong_FromSize_t(k);
  }
  parameter_type();
  const auto handle = c10::Dispatcher::singleton().findSchemaOrThrow(
      ("sinabs_fast::" + op).c_str(), "");
  DirectOp direct{handle, op, {}, {}, handle.schema().returns().size()};
  for (const auto& argument : handle.schema().arguments()) {
    direct.names.push_back(argument.name());
    direct.kinds.push_back(kind_of(argument, op));
  }
  ops.push_back(std::move(direct));
  return PyLong_FromSize_t(ops.size() - 1);
  END_HANDLE_TH_ERRORS
}

// A number converted by the Python C API, whose error value -1 may be a real -1.
template <typename T>
T checked(T value) {
  if (value == T(-1) && PyErr_Occurred()) throw python_error();
  return value;
}

// One argument onto the stack; false for a tensor subclass other than Parameter (torch.ops
// handles its __torch_function__). A TypeError names an argument of the wrong type.
bool push(torch::jit::Stack& stack, PyObject* obj, ArgKind kind, const DirectOp& op,
          size_t k) {
  const auto wrong = [&](const char* expected) {
    TORCH_CHECK_TYPE(false, "sinabs_fast::", op.name, ": ", op.names[k], " must be ", expected,
                     ", got ", Py_TYPE(obj)->tp_name);
  };
  switch (kind) {
    case ArgKind::kOptionalTensor:
      if (obj == Py_None) {
        stack.emplace_back();
        return true;
      }
      [[fallthrough]];
    case ArgKind::kTensor:
      if (!THPVariable_Check(obj)) wrong("a Tensor");
      if (!THPVariable_CheckExact(obj) && Py_TYPE(obj) != parameter_type()) return false;
      stack.emplace_back(THPVariable_Unpack(obj));
      return true;
    case ArgKind::kBool:
      if (!PyBool_Check(obj)) wrong("a bool");
      stack.emplace_back(obj == Py_True);
      return true;
    case ArgKind::kInt:
      if (!PyLong_Check(obj) || PyBool_Check(obj)) wrong("an int");
      stack.emplace_back(checked<int64_t>(PyLong_AsLongLong(obj)));
      return true;
    case ArgKind::kFloat:
      if (!PyFloat_Check(obj) && !PyLong_Check(obj)) wrong("a float");
      stack.emplace_back(checked(PyFloat_AsDouble(obj)));
      return true;
    case ArgKind::kFloatList: {
      if (!PyList_Check(obj) && !PyTuple_Check(obj)) wrong("a list of floats");
      const Py_ssize_t n = PySequence_Fast_GET_SIZE(obj);
      std::vector<double> values(n);
      for (Py_ssize_t j = 0; j < n; ++j) {
        PyObject* item = PySequence_Fast_GET_ITEM(obj, j);
        if (!PyFloat_Check(item) && !PyLong_Check(item)) wrong("a list of floats");
        values[j] = checked(PyFloat_AsDouble(item));
      }
      stack.emplace_back(std::move(values));
      return true;
    }
  }
  return false;
}

// call(index, args) -> the op's outputs as a tuple, or NotImplemented when an argument is a
// tensor subclass (other than Parameter).
PyObject* call(PyObject* /*module*/, PyObject* const* args, Py_ssize_t nargs) {
  HANDLE_TH_ERRORS
  TORCH_CHECK_TYPE(nargs == 2 && PyLong_Check(args[0]) && PyTuple_Check(args[1]),
                   "sinabs_fast._C.call takes an op index (op_index) and a tuple of the op's "
                   "positional arguments");
  const size_t index = PyLong_AsSize_t(args[0]);
  const auto& ops = direct_ops();
  TORCH_CHECK_INDEX(index < ops.size(), "sinabs_fast._C.call: no op with index ", index);
  const DirectOp& op = ops[index];
  PyObject* values = args[1];
  const auto n = static_cast<size_t>(PyTuple_GET_SIZE(values));
  TORCH_CHECK_TYPE(n == op.kinds.size(), "sinabs_fast::", op.name, " takes ", op.kinds.size(),
                   " arguments, got ", n);
  torch::jit::Stack stack;
  stack.reserve(n);
  for (size_t k = 0; k < n; ++k) {
    if (!push(stack, PyTuple_GET_ITEM(values, k), op.kinds[k], op, k)) {
      Py_RETURN_NOTIMPLEMENTED;
    }
  }
  {
    pybind11::gil_scoped_release no_gil;  // as torch.ops: other Python threads run meanwhile
    op.handle.callBoxed(stack);
  }
  TORCH_INTERNAL_ASSERT(stack.size() == op.returns);
  PyObject* result = PyTuple_New(static_cast<Py_ssize_t>(op.returns));
  if (result == nullptr) throw python_error();
  for (size_t k = 0; k < op.returns; ++k) {
    PyObject* output = THPVariable_Wrap(std::move(stack[k]).toTensor());
    if (output == nullptr) {
      Py_DECREF(result);
      throw python_error();
    }
    PyTuple_SET_ITEM(result, static_cast<Py_ssize_t>(k), output);
  }
  return result;
  END_HANDLE_TH_ERRORS
}

PyMethodDef methods[] = {
    {"op_index", op_index, METH_O,
     "op_index(name): the index of the op sinabs_fast::<name> for call()."},
    {"call", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(call)), METH_FASTCALL,
     "call(index, args): the op of that index (op_index) on the tuple of its positional "
     "arguments, through the dispatcher; NotImplemented for a tensor subclass argument."},
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
