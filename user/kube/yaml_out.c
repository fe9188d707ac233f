// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Objects as YAML (sockmeshctl get -o yaml): jansson values through
 * libyaml's emitter, one document per object. A string that YAML would read
 * as something else (a number, a boolean, null, empty) is quoted; anything
 * else is plain when libyaml allows it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "kube/kube.h"

/* Would YAML 1.1 resolve s (plain) to something other than a string? */
static bool ky_needs_quotes(const char *s)
{
	static const char *const words[] = { "true", "false", "yes", "no", "on", "off", "y", "n",
					     "null", "~", ".inf", "-.inf", ".nan" };
	char *end;

	if (!*s)
		return true;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcasecmp(s, words[i]))
			return true;
	strtod(s, &end);
	return *end == '\0';
}

static int ky_scalar(yaml_emitter_t *e, const char *s, bool is_string)
{
	yaml_event_t ev;
	bool plain = !is_string || !ky_needs_quotes(s);

	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), plain, !plain,
					  plain ? YAML_ANY_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE))
		return -ENOMEM;
	return yaml_emitter_emit(e, &ev) ? 0 : -EIO;
}

static int ky_value(yaml_emitter_t *e, json_t *v, int depth)
{
	yaml_event_t ev;
	char num[64];
	int ret = 0;

	if (depth > 64)
		return -ELOOP;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *x;

		yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
		if (!yaml_emitter_emit(e, &ev))
			return -EIO;
		json_object_foreach(v, k, x)
			if ((ret = ky_scalar(e, k, true)) || (ret = ky_value(e, x, depth + 1)))
				return ret;
		yaml_mapping_end_event_initialize(&ev);
		return yaml_emitter_emit(e, &ev) ? 0 : -EIO;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *x;

		yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
		if (!yaml_emitter_emit(e, &ev))
			return -EIO;
		json_array_foreach(v, i, x)
			if ((ret = ky_value(e, x, depth + 1)))
				return ret;
		yaml_sequence_end_event_initialize(&ev);
		return yaml_emitter_emit(e, &ev) ? 0 : -EIO;
	}
	case JSON_STRING:
		return ky_scalar(e, json_string_value(v), true);
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return ky_scalar(e, num, false);
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		return ky_scalar(e, num, false);
	case JSON_TRUE:
		return ky_scalar(e, "true", false);
	case JSON_FALSE:
		return ky_scalar(e, "false", false);
	default:
		return ky_scalar(e, "null", false);
	}
}

int kube_yaml_dump(json_t *objs, FILE *f)
{
	yaml_emitter_t e;
	yaml_event_t ev;
	size_t i;
	json_t *o;
	int ret = 0;

	if (!yaml_emitter_initialize(&e))
		return -ENOMEM;
	yaml_emitter_set_output_file(&e, f);
	yaml_emitter_set_unicode(&e, 1);
	yaml_emitter_set_width(&e, -1);
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	if (!yaml_emitter_emit(&e, &ev))
		ret = -EIO;
	json_array_foreach(objs, i, o) {
		if (ret)
			break;
		yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 0);
		if (!yaml_emitter_emit(&e, &ev) || (ret = ky_value(&e, o, 0))) {
			ret = ret ?: -EIO;
			break;
		}
		yaml_document_end_event_initialize(&ev, 1);
		if (!yaml_emitter_emit(&e, &ev))
			ret = -EIO;
	}
	if (!ret) {
		yaml_stream_end_event_initialize(&ev);
		if (!yaml_emitter_emit(&e, &ev) || !yaml_emitter_flush(&e))
			ret = -EIO;
	}
	yaml_emitter_delete(&e);
	return ret;
}
