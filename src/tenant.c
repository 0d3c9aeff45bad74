/* tenant.c - the tenant id and schema-name rules of DESIGN.md. */
#include "tenant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SCHEMA_PREFIX "tenant_"
#define DISPLAY_MAX 64

/* Render id for a message: unprintable bytes as \xNN, quotes and
 * backslashes escaped, cut after DISPLAY_MAX bytes with "...". */
static char *tenant_display(const char *id)
{
	return display_escape(id, DISPLAY_MAX, true);
}

/* Describe a single byte of an id for a message. */
static void byte_display(unsigned char c, char *buf, size_t len)
{
	if (c == '\'')
		snprintf(buf, len, "\"'\"");
	else if (c < 0x20 || c >= 0x7f)
		snprintf(buf, len, "byte \\x%02x", c);
	else
		snprintf(buf, len, "'%c'", c);
}

/* Check the id rule: 1-255 characters of [A-Za-z0-9_-]. */
bool tenant_id_valid(const char *id, char **cause)
{
	size_t len;
	char *shown;
	char what[16];
	bool valid;

	if (id == NULL || *id == '\0')
		return set_cause(cause, "tenant id is empty");
	len = strlen(id);
	if (len > TENANT_ID_MAX) {
		shown = tenant_display(id);
		set_cause(
			cause,
			"tenant id \"%s\" is %zu characters long; the limit is %d",
			shown, len, TENANT_ID_MAX);
		free(shown);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];

		valid = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '_' || c == '-';
		if (valid)
			continue;
		shown = tenant_display(id);
		byte_display(c, what, sizeof(what));
		set_cause(
			cause,
			"tenant id \"%s\" contains %s at position %zu; only letters, digits, '_' and '-' are allowed",
			shown, what, i + 1);
		free(shown);
		return false;
	}
	return true;
}

/* Build "tenant_" + the id lowercased with '-' turned into '_'. */
bool tenant_schema_name(const char *id, char *out, size_t outlen, char **cause)
{
	size_t prefix = strlen(SCHEMA_PREFIX);
	size_t len;
	char *shown;

	if (!tenant_id_valid(id, cause))
		return false;
	len = prefix + strlen(id);
	if (len > PG_IDENTIFIER_MAX) {
		shown = tenant_display(id);
		set_cause(
			cause,
			"tenant id \"%s\" is too long for a schema: \"%s\" + id is %zu bytes, PostgreSQL allows %d (ids of at most %zu characters)",
			shown, SCHEMA_PREFIX, len, PG_IDENTIFIER_MAX,
			PG_IDENTIFIER_MAX - prefix);
		free(shown);
		return false;
	}
	if (outlen < len + 1)
		return set_cause(cause,
				 "no room for the schema name of tenant \"%s\"",
				 id);
	memcpy(out, SCHEMA_PREFIX, prefix);
	for (size_t i = prefix; i < len; i++) {
		char c = id[i - prefix];

		if (c == '-')
			c = '_';
		else if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		out[i] = c;
	}
	out[len] = '\0';
	return true;
}

/* Quote an identifier: wrap in double quotes, double inner quotes. */
char *sql_quote_ident(const char *name)
{
	size_t len = strlen(name);
	char *out = xmalloc(len * 2 + 3);
	char *p = out;

	*p++ = '"';
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '"')
			*p++ = '"';
		*p++ = name[i];
	}
	*p++ = '"';
	*p = '\0';
	return out;
}
