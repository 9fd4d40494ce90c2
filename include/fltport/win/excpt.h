/*
 * fltport Windows layer: excpt.h — the structured-exception-handling
 * keywords of C code, for normal control flow only (windows.h and
 * fltkernel.h include it, as on Windows).
 *
 * No exception is ever caught: a fault inside a __try block (a bad pointer,
 * a division by zero) raises its Linux signal as anywhere else.  What works:
 *
 *   __try { ... __leave; ... } __finally { ... }
 *       The __finally block runs after the __try block ends normally or by
 *       __leave (from any depth of loops inside it).  AbnormalTermination()
 *       is FALSE there, which is exact: those are the only ways in.  A
 *       `return`, `goto`, `break` or `continue` out of the __try block skips
 *       the __finally block (Windows would run it): use __leave.
 *   __try { ... } __except (filter) { ... }
 *       The __try block runs; the filter is never evaluated and the handler
 *       never runs (no exception is raised), which is what Windows does when
 *       nothing faults.  GetExceptionCode() and GetExceptionInformation()
 *       compile (0 and NULL) for the handler and filter code that never runs.
 *
 * A try statement is two statements here, so `if (c) __try ...` without
 * braces would detach the __finally block from the `if`: __try therefore
 * starts with a declaration, which makes that (and `case X: __try`) a
 * compile error instead; put braces around it.
 *
 * In C the SDK's lower-case aliases try, except, finally and leave are
 * defined too.  C only: C++ has its own `try`, and libstdc++ defines __try.
 * Needs GCC or Clang (local labels, label attributes).
 */
#ifndef FLTPORT_EXCPT_H
#define FLTPORT_EXCPT_H

#define EXCEPTION_EXECUTE_HANDLER 1
#define EXCEPTION_CONTINUE_SEARCH 0
#define EXCEPTION_CONTINUE_EXECUTION (-1)

typedef struct _EXCEPTION_POINTERS EXCEPTION_POINTERS, *PEXCEPTION_POINTERS;

#ifndef __cplusplus
/* __try opens a block with its own __leave target (a local label, so that
 * nested try statements each have theirs); __finally / __except close it. */
/* (Not formatted: clang-format would turn "__except(...)" into an object-like
 * macro.) */
/* clang-format off */
#define __try _Static_assert(1, "fltport __try"); { __label__ fltport_leave_;
#define __leave goto fltport_leave_
#define __finally fltport_leave_: __attribute__((unused)); }
#define __except(...) fltport_leave_: __attribute__((unused)); } if (0 && (__VA_ARGS__))
/* clang-format on */

#define GetExceptionCode() ((int)0)
#define GetExceptionInformation() ((PEXCEPTION_POINTERS)0)
#define AbnormalTermination() 0

#define try __try
#define except __except
#define finally __finally
#define leave __leave
#endif /* !__cplusplus */

#endif /* FLTPORT_EXCPT_H */
