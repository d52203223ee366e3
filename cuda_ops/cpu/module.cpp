// The Python module pcgen._C. It holds no functions: importing it runs the
// TORCH_LIBRARY_FRAGMENT / TORCH_LIBRARY_IMPL registrations of every source in
// the extension, which expose the kernels as torch.ops.pcgen.*.
#include <Python.h>

extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT, "_C", "pcgen's compiled point-set kernels (torch.ops.pcgen)", -1, nullptr};
  return PyModule_Create(&module_def);
}
}
