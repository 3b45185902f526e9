/* tdsl.runtime._fastcall: the per-call fast path of a Module (see plan.py).
 *
 * Plan(entry_address, kinds, itemsizes, ndims, outputs).run(arrays, num_threads) reads each
 * argument's dtype, rank, flags, data pointer and shape through NumPy's C API, calls the
 * library's checked entry point `int entry(void* const* data, const int64_t* const* shapes,
 * int num_threads, char* err, size_t err_len)` with the GIL released, and returns None
 * (success), (code, message) (the entry refused the call or the kernel failed) or False
 * (an argument needs the Python checks, which raise the usual error).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define MAX_ARGS 64

_Static_assert(sizeof(npy_intp) == sizeof(int64_t), "npy_intp must be 64-bit");

typedef int (*tdsl_entry)(void* const*, const int64_t* const*, int, char*, size_t);

static atomic_int in_flight = 0;   /* calls running now, in this process */
static int budget = 1;             /* threads shared by the calls in flight */

typedef struct {
  PyObject_HEAD
  tdsl_entry entry;
  int nargs;
  char kind[MAX_ARGS];
  int itemsize[MAX_ARGS];
  int ndim[MAX_ARGS];
  char output[MAX_ARGS];
} Plan;

static int Plan_init(Plan* self, PyObject* args, PyObject* kwds) {
  unsigned long long address;
  const char* kinds;
  Py_ssize_t nkinds;
  PyObject *itemsizes, *ndims, *outputs;
  if (!PyArg_ParseTuple(args, "Ks#O!O!O!", &address, &kinds, &nkinds, &PyTuple_Type, &itemsizes,
                        &PyTuple_Type, &ndims, &PyTuple_Type, &outputs))
    return -1;
  if (nkinds > MAX_ARGS || PyTuple_GET_SIZE(itemsizes) != nkinds ||
      PyTuple_GET_SIZE(ndims) != nkinds || PyTuple_GET_SIZE(outputs) != nkinds) {
    PyErr_SetString(PyExc_ValueError, "Plan: inconsistent or too many arguments (at most 64)");
    return -1;
  }
  self->entry = (tdsl_entry)(uintptr_t)address;
  self->nargs = (int)nkinds;
  for (Py_ssize_t k = 0; k < nkinds; ++k) {
    self->kind[k] = kinds[k];
    self->itemsize[k] = (int)PyLong_AsLong(PyTuple_GET_ITEM(itemsizes, k));
    self->ndim[k] = (int)PyLong_AsLong(PyTuple_GET_ITEM(ndims, k));
    self->output[k] = (char)PyObject_IsTrue(PyTuple_GET_ITEM(outputs, k));
  }
  return PyErr_Occurred() ? -1 : 0;
}

static PyObject* Plan_run(Plan* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2 || !PyTuple_Check(args[0])) {
    PyErr_SetString(PyExc_TypeError, "Plan.run(arrays: tuple, num_threads: int)");
    return NULL;
  }
  long threads = PyLong_AsLong(args[1]);
  if (threads == -1 && PyErr_Occurred()) return NULL;
  PyObject* arrays = args[0];
  if (PyTuple_GET_SIZE(arrays) != self->nargs) Py_RETURN_FALSE;
  void* data[MAX_ARGS];
  const int64_t* shapes[MAX_ARGS];
  for (int k = 0; k < self->nargs; ++k) {
    PyObject* o = PyTuple_GET_ITEM(arrays, k);
    if (!PyArray_Check(o)) Py_RETURN_FALSE;
    PyArrayObject* a = (PyArrayObject*)o;
    if (PyArray_DESCR(a)->kind != self->kind[k] || PyArray_ITEMSIZE(a) != self->itemsize[k] ||
        !PyArray_ISNOTSWAPPED(a) || PyArray_NDIM(a) != self->ndim[k] ||
        !PyArray_IS_C_CONTIGUOUS(a) || (self->output[k] && !PyArray_ISWRITEABLE(a)))
      Py_RETURN_FALSE;
    data[k] = PyArray_DATA(a);
    shapes[k] = (const int64_t*)PyArray_DIMS(a);
  }
  int active = atomic_fetch_add(&in_flight, 1) + 1;
  int team = (int)threads;
  if (team <= 0) team = budget / active > 0 ? budget / active : 1;
  char message[512];
  int code;
  Py_BEGIN_ALLOW_THREADS
  code = self->entry(data, shapes, team, message, sizeof message);
  Py_END_ALLOW_THREADS
  atomic_fetch_sub(&in_flight, 1);
  if (code == 0) Py_RETURN_NONE;
  return Py_BuildValue("(is)", code, message);
}

static PyMethodDef Plan_methods[] = {
  {"run", (PyCFunction)(void (*)(void))Plan_run, METH_FASTCALL,
   "run(arrays, num_threads) -> None | (code, message) | False"},
  {NULL, NULL, 0, NULL},
};

static PyTypeObject PlanType = {
  PyVarObject_HEAD_INIT(NULL, 0)
  .tp_name = "tdsl.runtime._fastcall.Plan",
  .tp_basicsize = sizeof(Plan),
  .tp_flags = Py_TPFLAGS_DEFAULT,
  .tp_doc = "The checks and the call of one entry point (see tdsl/runtime/plan.py).",
  .tp_new = PyType_GenericNew,
  .tp_init = (initproc)Plan_init,
  .tp_methods = Plan_methods,
};

static PyObject* configure(PyObject* module, PyObject* arg) {
  long value = PyLong_AsLong(arg);
  if (value == -1 && PyErr_Occurred()) return NULL;
  budget = value > 0 ? (int)value : 1;
  Py_RETURN_NONE;
}

static PyObject* calls_in_flight(PyObject* module, PyObject* unused) {
  return PyLong_FromLong(atomic_load(&in_flight));
}

/* Calls in flight in the parent are not in flight in the child. */
static void reset_after_fork(void) { atomic_store(&in_flight, 0); }

static PyMethodDef module_methods[] = {
  {"configure", configure, METH_O, "configure(budget): threads shared by concurrent calls"},
  {"calls_in_flight", calls_in_flight, METH_NOARGS, "calls running now"},
  {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
  PyModuleDef_HEAD_INIT, "_fastcall", "The per-call fast path of tdsl Modules.", -1,
  module_methods,
};

PyMODINIT_FUNC PyInit__fastcall(void) {
  import_array();
  if (PyType_Ready(&PlanType) < 0) return NULL;
  PyObject* m = PyModule_Create(&module_def);
  if (!m) return NULL;
  Py_INCREF(&PlanType);
  if (PyModule_AddObject(m, "Plan", (PyObject*)&PlanType) < 0) {
    Py_DECREF(&PlanType);
    Py_DECREF(m);
    return NULL;
  }
  pthread_atfork(NULL, NULL, reset_after_fork);
  return m;
}
