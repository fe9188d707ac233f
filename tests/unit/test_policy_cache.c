// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The policy document cache (user/policy/cache.c): a set loaded through
 * it is the same as one loaded without it (objects, diagnostics with
 * their file:line:col; after a YAML syntax error it goes on checking the
 * next documents), documents are reused while their text and place stay,
 * and re-parsed when either changes.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/policy.h"
#include "test.h"

/* Diagnostics and object counts as one string, for comparing sets. */
static char *set_summary(const struct pol_set *s)
{
	size_t cap = 4096, len = 0;
	char *out = malloc(cap), line[600];

	len += snprintf(out, cap, "svcs %zu pods %zu eps %zu drs %zu vss %zu gws %zu\n",
			s->n_svcs, s->n_pods, s->n_eps, s->n_drs, s->n_vss, s->n_gws);
	for (size_t i = 0; i < s->n_svcs; i++) {
		size_t n = snprintf(line, sizeof(line), "svc %s/%s %s:%u\n", s->svcs[i].meta.ns,
				    s->svcs[i].meta.name, s->svcs[i].meta.loc.file,
				    s->svcs[i].meta.loc.line);

		if (len + n + 1 > cap)
			out = realloc(out, cap = (cap + n) * 2);
		memcpy(out + len, line, n + 1);
		len += n;
	}
	for (size_t i = 0; i < s->n_diags; i++) {
		size_t n;

		policy_diag_format(&s->diags[i], line, sizeof(line) - 1);
		n = strlen(line);
		line[n++] = '\n';
		line[n] = '\0';
		if (len + n + 1 > cap)
			out = realloc(out, cap = (cap + n) * 2);
		memcpy(out + len, line, n + 1);
		len += n;
	}
	return out;
}

static char *load_summary(struct pol_cache *c, const char *name, const char *yaml)
{
	struct pol_set s;
	char *sum;

	policy_set_init(&s);
	if (c) {
		policy_cache_begin(c);
		policy_set_use_cache(&s, c);
	}
	policy_load_buffer(&s, name, yaml, strlen(yaml));
	policy_validate(&s);
	sum = set_summary(&s);
	policy_set_free(&s);
	if (c)
		policy_cache_end(c);
	return sum;
}

static const char *svc_doc =
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: a, namespace: x}\n"
	"spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n";

TEST(policy_cache_same_as_uncached)
{
	/* every checked-in policy: shipped, e2e, unit data, Istio samples */
	static const char *const globs[] = {
		"policies/*.yaml", "tests/e2e/policies/*.yaml", "tests/unit/data/policy/*.yaml",
		"tests/unit/data/policy/dir/*", "tests/compat/istio-samples/*.yaml",
		"tests/e2e/k8s-fixtures/*.yaml",
	};
	struct pol_cache *c = policy_cache_new();
	size_t files = 0;

	ASSERT_TRUE(c != NULL);
	for (size_t g = 0; g < sizeof(globs) / sizeof(globs[0]); g++) {
		glob_t gl;

		if (glob(globs[g], 0, NULL, &gl))
			continue;
		for (size_t i = 0; i < gl.gl_pathc; i++) {
			FILE *f = fopen(gl.gl_pathv[i], "r");
			char *buf = calloc(1, 1 << 20), *plain, *first, *again;
			size_t parsed, reused;

			ASSERT_TRUE(f && buf);
			fread(buf, 1, (1 << 20) - 1, f);
			fclose(f);
			plain = load_summary(NULL, gl.gl_pathv[i], buf);
			first = load_summary(c, gl.gl_pathv[i], buf);
			again = load_summary(c, gl.gl_pathv[i], buf);
			policy_cache_stats(c, &parsed, &reused);
			if (strcmp(plain, first) || strcmp(plain, again))
				fprintf(stderr, "  %s:\n--- plain\n%s--- cached\n%s--- again\n%s",
					gl.gl_pathv[i], plain, first, again);
			ASSERT_STREQ(first, plain);
			ASSERT_STREQ(again, plain);
			ASSERT_EQ(parsed, 0);	/* the second load reused every document */
			free(plain);
			free(first);
			free(again);
			free(buf);
			files++;
		}
		globfree(&gl);
	}
	ASSERT_GE(files, 20);
	policy_cache_free(c);
}

/* Three one-Service documents a, b, c (5 lines each) after `top` lines. */
static void three_svcs(char *out, size_t len, const char *top, unsigned int b_vip)
{
	snprintf(out, len,
		 "%s"
		 "---\napiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: x}\n"
		 "spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n"
		 "---\napiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: x}\n"
		 "spec: {clusterIP: 10.96.0.%u, ports: [{port: 80}]}\n"
		 "---\napiVersion: v1\nkind: Service\nmetadata: {name: c, namespace: x}\n"
		 "spec: {clusterIP: 10.96.0.3, ports: [{port: 80}]}\n", top, b_vip);
}

TEST(policy_cache_reparses_only_what_changed)
{
	struct pol_cache *c = policy_cache_new();
	size_t parsed, reused;
	char yaml[4096], *sum;

	three_svcs(yaml, sizeof(yaml), "", 2);
	free(load_summary(c, "f.yaml", yaml));
	policy_cache_stats(c, &parsed, &reused);
	ASSERT_EQ(parsed, 3);
	ASSERT_EQ(reused, 0);

	/* b's VIP changes: b alone is parsed again */
	three_svcs(yaml, sizeof(yaml), "", 7);
	sum = load_summary(c, "f.yaml", yaml);
	policy_cache_stats(c, &parsed, &reused);
	ASSERT_EQ(parsed, 1);
	ASSERT_EQ(reused, 2);
	ASSERT_TRUE(strstr(sum, "svc x/c f.yaml:13") != NULL);
	free(sum);

	/* a comment line at the top moves every document: all parsed again,
	 * and the positions are the new ones */
	three_svcs(yaml, sizeof(yaml), "# moved\n", 7);
	sum = load_summary(c, "f.yaml", yaml);
	policy_cache_stats(c, &parsed, &reused);
	ASSERT_EQ(parsed, 3);
	ASSERT_TRUE(strstr(sum, "svc x/c f.yaml:14") != NULL);
	free(sum);

	/* the same text in another file is another document */
	free(load_summary(c, "g.yaml", yaml));
	policy_cache_stats(c, &parsed, &reused);
	ASSERT_EQ(parsed, 3);
	policy_cache_free(c);
}

TEST(policy_cache_errors_keep_positions)
{
	struct pol_cache *c = policy_cache_new();
	char yaml[2048], *plain, *cached;

	/* A syntax error in the second document: same position. Unlike one
	 * libyaml pass over the file, the documents after it are still
	 * checked (here: a duplicate of the first). */
	snprintf(yaml, sizeof(yaml), "%s---\nkind: [\n%s", svc_doc, svc_doc);
	plain = load_summary(NULL, "e.yaml", yaml);
	cached = load_summary(c, "e.yaml", yaml);
	ASSERT_TRUE(strstr(plain, "e.yaml:8:1: error: YAML syntax") != NULL);
	ASSERT_TRUE(strstr(cached, "e.yaml:8:1: error: YAML syntax") != NULL);
	ASSERT_TRUE(strstr(cached, "e.yaml:10:1: error: duplicate Service x/a") != NULL);
	free(plain);
	free(cached);

	/* directives tie documents together: the file is one piece */
	snprintf(yaml, sizeof(yaml), "%%YAML 1.1\n%s", svc_doc);
	plain = load_summary(NULL, "d.yaml", yaml);
	cached = load_summary(c, "d.yaml", yaml);
	ASSERT_STREQ(cached, plain);
	free(plain);
	free(cached);
	policy_cache_free(c);
}

/* A directory of files through the cache: parsed ahead in parallel, counted once. */
TEST(policy_cache_directory_prefetch)
{
	char dir[] = "/tmp/sm-unit-prefetch.XXXXXX", path[64];
	struct pol_cache *c = policy_cache_new();
	size_t parsed, reused;
	char *plain, *cached;
	struct pol_set s;

	if (!ASSERT_TRUE(mkdtemp(dir) != NULL))
		return;
	for (int f = 0; f < 6; f++) {
		FILE *fp;

		snprintf(path, sizeof(path), "%s/f%d.yaml", dir, f);
		fp = fopen(path, "w");
		for (int i = 0; i < 50; i++)
			fprintf(fp, "---\napiVersion: v1\nkind: Service\nmetadata: {name: s%d-%d, namespace: x}\n"
				"spec: {clusterIP: 10.96.%d.%d, ports: [{port: 80}]}\n", f, i, f, i + 1);
		if (f == 3)	/* an error keeps its file:line:col */
			fprintf(fp, "---\napiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: x}\n"
				"spec: {clusterIP: 10.96.99.1, ports: [{port: http}]}\n");
		fclose(fp);
	}
	policy_set_init(&s);
	policy_load_path(&s, dir);
	policy_validate(&s);
	plain = set_summary(&s);
	policy_set_free(&s);

	for (int round = 0; round < 2; round++) {
		policy_cache_begin(c);
		policy_set_init(&s);
		policy_set_use_cache(&s, c);
		policy_load_path(&s, dir);
		policy_validate(&s);
		cached = set_summary(&s);
		policy_cache_stats(c, &parsed, &reused);
		ASSERT_STREQ(cached, plain);
		ASSERT_EQ(parsed + reused, 301);
		ASSERT_EQ(parsed, round == 0 ? 301 : 0);
		ASSERT_STRSTR(cached, "f3.yaml:");
		free(cached);
		policy_set_free(&s);
		policy_cache_end(c);
	}
	free(plain);
	policy_cache_free(c);
	for (int f = 0; f < 6; f++) {
		snprintf(path, sizeof(path), "%s/f%d.yaml", dir, f);
		unlink(path);
	}
	rmdir(dir);
}
