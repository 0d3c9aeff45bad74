/* setup.h - the daemon's own rows on each dispatcher session: schema,
 * job kinds, limits and grants. */
#ifndef PGT_SETUP_H
#define PGT_SETUP_H

#include <stdbool.h>

struct engine;

typedef void (*setup_done_fn)(bool ok, const char *error, void *arg);

/* On a fresh dispatcher session: bring the schema to this build's version
 * (schema_install), then send the publication of the loaded kinds and the
 * limits and grants (setup_publish_kinds). done is called once, when the
 * schema is in place or could not be (error says why; on a connection
 * lost meanwhile as well); what it sends after that runs before anything
 * done sends on the same connection. */
void setup_start(struct engine *e, setup_done_fn done, void *arg);

/* Publish the loaded job kinds to pgtenantd.job_kinds and write the
 * configured limits and grants (at setup and after a reload). */
void setup_publish_kinds(struct engine *e);

#endif
