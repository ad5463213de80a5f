/* json_util.h — the engine's one way to report a JSON text that does not parse, and the
 * machine record of run folders (internal: it exposes jansson's types, which the public
 * headers keep out). */
#ifndef R1_JSON_UTIL_H
#define R1_JSON_UTIL_H

#include <jansson.h>

#include "r1.h"

/* Sets err to R1_EFORMAT "NAME: not valid JSON: TEXT (line L, column C)" and returns it. */
r1_status r1_json_fail(r1_error *err, const char *name, const json_error_t *je);

/* {"cpu", "isa", "blas", "kernels", "threads"} of r1_machine_get (NULL when out of memory). */
json_t *r1_machine_json(void);

#endif
