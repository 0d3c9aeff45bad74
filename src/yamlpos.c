/* yamlpos.c - where each key of a YAML file stands, so that errors found
 * after parsing can name the line. Built with libyaml's event parser. */
#include "yamlpos.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util.h"

struct yamlpos_entry {
	char *path;
	unsigned line;
};

struct yamlpos {
	struct yamlpos_entry *entries;
	size_t count;
	size_t alloc;
};

/* One open mapping or sequence while walking the events. */
struct yamlpos_frame {
	bool mapping;
	char *path;	/* NULL inside a complex key: not indexed */
	bool want_key;	/* mapping: the next node is a key */
	char *key;	/* mapping: the key whose value comes next */
	unsigned index; /* sequence: index of the next item */
	char **keys;	/* mapping: keys seen, to refuse duplicates */
	unsigned *key_lines;
	size_t key_count;
};

struct yamlpos_walk {
	struct yamlpos *pos;
	struct yamlpos_frame *stack;
	size_t depth;
	size_t alloc;
};

/* Remember the line of path unless an earlier node already claimed it. */
static void yamlpos_add(struct yamlpos *pos, const char *path, unsigned line)
{
	for (size_t i = 0; i < pos->count; i++) {
		if (strcmp(pos->entries[i].path, path) == 0)
			return;
	}
	if (pos->count == pos->alloc) {
		pos->alloc = pos->alloc ? pos->alloc * 2 : 32;
		pos->entries = xrealloc(pos->entries,
					pos->alloc * sizeof(*pos->entries));
	}
	pos->entries[pos->count].path = xstrdup(path);
	pos->entries[pos->count].line = line;
	pos->count++;
}

/* Release one frame of the walk. */
static void yamlpos_frame_clear(struct yamlpos_frame *frame)
{
	free(frame->path);
	free(frame->key);
	for (size_t i = 0; i < frame->key_count; i++)
		free(frame->keys[i]);
	free(frame->keys);
	free(frame->key_lines);
	memset(frame, 0, sizeof(*frame));
}

/* Open a mapping or sequence whose own path is path (may be NULL). */
static void yamlpos_push(struct yamlpos_walk *walk, bool mapping,
			 const char *path)
{
	struct yamlpos_frame *frame;

	if (walk->depth == walk->alloc) {
		walk->alloc = walk->alloc ? walk->alloc * 2 : 16;
		walk->stack = xrealloc(walk->stack,
				       walk->alloc * sizeof(*walk->stack));
	}
	frame = &walk->stack[walk->depth++];
	memset(frame, 0, sizeof(*frame));
	frame->mapping = mapping;
	frame->want_key = true;
	frame->path = path != NULL ? xstrdup(path) : NULL;
}

/* Join a parent path and a key with a dot ("" parent gives the key). */
static char *yamlpos_join(const char *parent, const char *key)
{
	if (parent == NULL || key == NULL)
		return NULL;
	if (*parent == '\0')
		return xstrdup(key);
	return xasprintf("%s.%s", parent, key);
}

/* Record a mapping key, refusing one that the mapping already has. */
static bool yamlpos_key(struct yamlpos_walk *walk, struct yamlpos_frame *top,
			const char *key, const yaml_mark_t *mark,
			const char *file, char **cause)
{
	unsigned line = (unsigned)mark->line + 1;
	char *path;

	for (size_t i = 0; i < top->key_count; i++) {
		if (strcmp(top->keys[i], key) != 0)
			continue;
		return set_cause(
			cause,
			"%s:%u:%zu: duplicate key \"%s\" (first given at line %u)",
			file, line, mark->column + 1, key, top->key_lines[i]);
	}
	top->keys =
		xrealloc(top->keys, (top->key_count + 1) * sizeof(*top->keys));
	top->key_lines = xrealloc(
		top->key_lines, (top->key_count + 1) * sizeof(*top->key_lines));
	top->keys[top->key_count] = xstrdup(key);
	top->key_lines[top->key_count] = line;
	top->key_count++;

	free(top->key);
	top->key = xstrdup(key);
	path = yamlpos_join(top->path, key);
	if (path != NULL)
		yamlpos_add(walk->pos, path, line);
	free(path);
	return true;
}

/* Handle one node event (scalar, alias, or start of a collection). */
static bool yamlpos_node(struct yamlpos_walk *walk, const yaml_event_t *ev,
			 const char *file, char **cause)
{
	bool collection = ev->type == YAML_MAPPING_START_EVENT ||
			  ev->type == YAML_SEQUENCE_START_EVENT;
	bool mapping = ev->type == YAML_MAPPING_START_EVENT;
	struct yamlpos_frame *top;
	char *path = NULL;

	if (walk->depth == 0) {
		if (collection)
			yamlpos_push(walk, mapping, "");
		return true;
	}
	top = &walk->stack[walk->depth - 1];
	if (top->mapping && top->want_key) {
		top->want_key = false;
		free(top->key);
		top->key = NULL;
		if (ev->type == YAML_SCALAR_EVENT)
			return yamlpos_key(walk, top,
					   (const char *)ev->data.scalar.value,
					   &ev->start_mark, file, cause);
		if (collection)
			yamlpos_push(walk, mapping, NULL);
		return true;
	}
	if (top->mapping) {
		top->want_key = true;
		path = yamlpos_join(top->path, top->key);
	} else if (top->path != NULL) {
		path = xasprintf("%s[%u]", top->path, top->index++);
		yamlpos_add(walk->pos, path, (unsigned)ev->start_mark.line + 1);
	}
	if (collection)
		yamlpos_push(walk, mapping, path);
	free(path);
	return true;
}

/* Line and column of a byte offset in f, counted from 1. */
static void yamlpos_offset_mark(FILE *f, size_t offset, size_t *line,
				size_t *column)
{
	int c;

	*line = 1;
	*column = 1;
	if (fseek(f, 0, SEEK_SET) != 0)
		return;
	for (size_t i = 0; i < offset && (c = getc(f)) != EOF; i++) {
		if (c == '\n') {
			(*line)++;
			*column = 1;
		} else {
			(*column)++;
		}
	}
}

/* Format libyaml's parser error as "FILE:LINE:COL: problem". */
static bool yamlpos_parse_error(const yaml_parser_t *parser, FILE *f,
				const char *file, char **cause)
{
	const char *problem = parser->problem ? parser->problem : "error";
	size_t line, column;

	if (parser->error == YAML_MEMORY_ERROR)
		return set_cause(cause, "%s: out of memory parsing YAML", file);
	if (parser->error == YAML_READER_ERROR) {
		yamlpos_offset_mark(f, parser->problem_offset, &line, &column);
		return set_cause(cause, "%s:%zu:%zu: %s", file, line, column,
				 problem);
	}
	if (parser->context != NULL)
		return set_cause(cause,
				 "%s:%zu:%zu: %s %s (started at line %zu)",
				 file, parser->problem_mark.line + 1,
				 parser->problem_mark.column + 1, problem,
				 parser->context,
				 parser->context_mark.line + 1);
	return set_cause(cause, "%s:%zu:%zu: %s", file,
			 parser->problem_mark.line + 1,
			 parser->problem_mark.column + 1, problem);
}

/* Run the event parser over f, filling walk->pos. */
static bool yamlpos_scan(struct yamlpos_walk *walk, FILE *f, const char *file,
			 char **cause)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	bool done = false, good = true;

	if (!yaml_parser_initialize(&parser))
		return set_cause(cause, "%s: cannot start the YAML parser",
				 file);
	yaml_parser_set_input_file(&parser, f);
	while (good && !done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			good = yamlpos_parse_error(&parser, f, file, cause);
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_SCALAR_EVENT:
		case YAML_ALIAS_EVENT:
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			good = yamlpos_node(walk, &ev, file, cause);
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			if (walk->depth > 0)
				yamlpos_frame_clear(
					&walk->stack[--walk->depth]);
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return good;
}

/* Index the file at path by key path. */
struct yamlpos *yamlpos_load(const char *path, char **cause)
{
	struct yamlpos_walk walk = { 0 };
	struct yamlpos *pos;
	FILE *f;
	bool good;

	f = fopen(path, "rb");
	if (f == NULL) {
		set_cause(cause, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	pos = xcalloc(1, sizeof(*pos));
	walk.pos = pos;
	good = yamlpos_scan(&walk, f, path, cause);
	if (good && ferror(f)) {
		good = set_cause(cause, "%s: cannot read: %s", path,
				 strerror(errno));
	}
	fclose(f);
	while (walk.depth > 0)
		yamlpos_frame_clear(&walk.stack[--walk.depth]);
	free(walk.stack);
	if (!good) {
		yamlpos_free(pos);
		return NULL;
	}
	return pos;
}

/* Line of path, else of its nearest present parent, else 0. */
unsigned yamlpos_line(const struct yamlpos *pos, const char *path)
{
	char *copy;
	size_t len;
	unsigned line = 0;

	if (pos == NULL || path == NULL)
		return 0;
	copy = xstrdup(path);
	len = strlen(copy);
	while (len > 0) {
		for (size_t i = 0; i < pos->count; i++) {
			if (strcmp(pos->entries[i].path, copy) == 0) {
				line = pos->entries[i].line;
				break;
			}
		}
		if (line != 0)
			break;
		while (len > 0 && copy[len - 1] != '.' && copy[len - 1] != '[')
			len--;
		if (len > 0)
			len--;
		copy[len] = '\0';
	}
	free(copy);
	return line;
}

void yamlpos_free(struct yamlpos *pos)
{
	if (pos == NULL)
		return;
	for (size_t i = 0; i < pos->count; i++)
		free(pos->entries[i].path);
	free(pos->entries);
	free(pos);
}
