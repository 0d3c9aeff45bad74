/* tenant.h - the tenant id and schema-name rules of DESIGN.md. */
#ifndef PGT_TENANT_H
#define PGT_TENANT_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define TENANT_ID_MAX 255
#define PG_IDENTIFIER_MAX 63

/* True if id is 1-255 characters of [A-Za-z0-9_-]; otherwise fills cause
 * with a message that names the id and what is wrong with it. */
bool tenant_id_valid(const char *id, char **cause) MUST_CHECK;

/* Write the tenant's schema name, "tenant_" + id with '-' turned into '_'
 * and lowercased, into out (at least PG_IDENTIFIER_MAX + 1 bytes).
 * False (with cause) if the id is invalid or the name exceeds 63 bytes. */
bool tenant_schema_name(const char *id, char *out, size_t outlen, char **cause)
	MUST_CHECK;

/* Quote an identifier the way PostgreSQL's quote_ident does in its always-
 * quote form: wrap in double quotes and double any double quote inside.
 * Returns a new string. */
char *sql_quote_ident(const char *name);

#endif
