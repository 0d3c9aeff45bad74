/* test_tenant.c - tenant id rule, schema names and identifier quoting. */
#include <stdlib.h>
#include <string.h>

#include "tenant.h"
#include "unit.h"

/* The schema name of id, or NULL (cause in *cause) if refused. */
static char *schema_of(const char *id, char **cause)
{
	static char out[PG_IDENTIFIER_MAX + 1];

	if (!tenant_schema_name(id, out, sizeof(out), cause))
		return NULL;
	return out;
}

/* Ids that follow the rule are accepted, others refused with a cause
 * that names the id and the fault. */
static void test_id_rule(void)
{
	char *cause = NULL;
	char long_id[TENANT_ID_MAX + 2];

	ok(tenant_id_valid("acme-corp", &cause), "acme-corp is valid");
	ok(tenant_id_valid("A_b-9", &cause), "mixed case, digits, _ and -");
	ok(tenant_id_valid("x", &cause), "one character");
	ok(cause == NULL, "no cause when valid");

	ok(!tenant_id_valid("", &cause), "empty refused");
	contains(cause, "empty", "empty: says so");
	ok(!tenant_id_valid(NULL, &cause), "NULL refused");

	ok(!tenant_id_valid("acme corp", &cause), "space refused");
	contains(cause, "\"acme corp\"", "space: names the id");
	contains(cause, "' '", "space: names the character");
	contains(cause, "position 5", "space: names the position");

	ok(!tenant_id_valid("a.b", &cause), "dot refused");
	ok(!tenant_id_valid("x'; DROP SCHEMA", &cause), "quote refused");
	contains(cause, "\"'\"", "quote: names the character");
	ok(!tenant_id_valid("caf\xc3\xa9", &cause), "non-ASCII refused");
	contains(cause, "\"caf\\xc3\\xa9\"", "non-ASCII escaped in message");
	ok(!tenant_id_valid("a\nb", &cause), "newline refused");
	contains(cause, "\"a\\x0ab\"", "newline escaped in message");
	ok(strchr(cause, '\n') == NULL, "message stays on one line");
	ok(!tenant_id_valid("a\"b", &cause), "double quote refused");
	contains(cause, "\"a\\\"b\"", "double quote escaped in message");

	memset(long_id, 'a', TENANT_ID_MAX);
	long_id[TENANT_ID_MAX] = '\0';
	ok(tenant_id_valid(long_id, &cause), "255 characters accepted");
	long_id[TENANT_ID_MAX] = 'a';
	long_id[TENANT_ID_MAX + 1] = '\0';
	ok(!tenant_id_valid(long_id, &cause), "256 characters refused");
	contains(cause, "256 characters", "long: gives the length");
	contains(cause, "255", "long: gives the limit");
	contains(cause, "...", "long: id shortened in message");
	ok(strlen(cause) < 200, "long: message stays short");
	free(cause);
}

/* Schema names: prefix, '-' to '_', lowercase, 63-byte limit. */
static void test_schema_name(void)
{
	char *cause = NULL;
	char id[80], small[8];

	is_str(schema_of("acme-corp", &cause), "tenant_acme_corp", "dash");
	is_str(schema_of("ACME_Corp", &cause), "tenant_acme_corp", "case");
	is_str(schema_of("a-B-9", &cause), "tenant_a_b_9", "mixed");
	is_str(schema_of("Zz", &cause), "tenant_zz", "two letters");

	memset(id, 'q', 56);
	id[56] = '\0';
	is_int(strlen(schema_of(id, &cause) ? schema_of(id, &cause) : ""), 63,
	       "56-character id gives a 63-byte name");
	id[56] = 'q';
	id[57] = '\0';
	ok(schema_of(id, &cause) == NULL, "57-character id refused");
	contains(cause, "64 bytes", "too long: gives the length");
	contains(cause, "63", "too long: gives the limit");
	contains(cause, "qqqq", "too long: names the id");

	ok(schema_of("bad id", &cause) == NULL, "invalid id refused");
	contains(cause, "\"bad id\"", "invalid: names the id");
	ok(!tenant_schema_name("abc", small, sizeof(small), &cause),
	   "refused when out is too small");
	free(cause);
}

/* Identifiers are always quoted, inner quotes doubled. */
static void test_quote_ident(void)
{
	char *q;

	q = sql_quote_ident("tenant_acme");
	is_str(q, "\"tenant_acme\"", "plain name");
	free(q);
	q = sql_quote_ident("Mixed Case");
	is_str(q, "\"Mixed Case\"", "spaces and case kept");
	free(q);
	q = sql_quote_ident("a\"b\"\"");
	is_str(q, "\"a\"\"b\"\"\"\"\"", "quotes doubled");
	free(q);
	q = sql_quote_ident("");
	is_str(q, "\"\"", "empty");
	free(q);
}

int main(void)
{
	test_id_rule();
	test_schema_name();
	test_quote_ident();
	return done_testing();
}
