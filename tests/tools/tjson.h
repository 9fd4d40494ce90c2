/*
 * A strict JSON reader for the tests of fltportctl --json (RFC 8259): it
 * accepts only what a conforming parser must accept — no raw control bytes
 * in strings, no invalid UTF-8, no lone surrogates, no trailing commas or
 * garbage, no duplicate keys — so that a document it reads is one any
 * consumer reads, and the values found in it are the decoded ones.
 *
 *   tj_parse(text, &v, err, cap)  parse a whole document into a tree
 *   tj_get(obj, "key")            a member, or NULL
 *   tj_at(arr, i)                 an element, or NULL
 *   tj_find(arr, "key", "value")  the first object of arr whose key is that string
 *   tj_str(v), tj_int(v, &n)      a string (NULL if not one); an integer
 *   tj_free(&v)
 */
#ifndef FP_TJSON_H
#define FP_TJSON_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TJ_MAX_DEPTH 32

enum tj_type { TJ_NULL, TJ_BOOL, TJ_NUM, TJ_STR, TJ_ARR, TJ_OBJ };

struct tj {
	enum tj_type type;
	bool b;
	char *s;      /* TJ_STR: the decoded UTF-8; TJ_NUM: the number as written */
	size_t n;     /* TJ_ARR, TJ_OBJ: members */
	struct tj *v; /* the members */
	char **k;     /* TJ_OBJ: their keys */
};

struct tj_in {
	const char *p;
	int depth;
	const char *err;
};

static inline void tj_free(struct tj *v)
{
	for (size_t i = 0; i < v->n; i++) {
		tj_free(&v->v[i]);
		if (v->k)
			free(v->k[i]);
	}
	free(v->v);
	free(v->k);
	free(v->s);
	memset(v, 0, sizeof(*v));
}

static inline void tj_ws(struct tj_in *in)
{
	while (*in->p == ' ' || *in->p == '\t' || *in->p == '\n' || *in->p == '\r')
		in->p++;
}

static inline bool tj_fail(struct tj_in *in, const char *why)
{
	if (!in->err)
		in->err = why;
	return false;
}

/* The length of the valid UTF-8 sequence at p, 0 if none. */
static inline size_t tj_utf8(const unsigned char *p)
{
	unsigned c = p[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		return (c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0) ? 0 : 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
			return 0;
		return (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90) ? 0 : 4;
	}
	return 0;
}

struct tj_buf {
	char *b;
	size_t n, cap;
};

static inline bool tj_put(struct tj_buf *b, const void *p, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = (b->cap ? b->cap * 2 : 64) + n;
		char *nb = realloc(b->b, cap);

		if (!nb)
			return false;
		b->b = nb;
		b->cap = cap;
	}
	memcpy(b->b + b->n, p, n);
	b->n += n;
	b->b[b->n] = '\0';
	return true;
}

static inline bool tj_put_cp(struct tj_buf *b, unsigned long cp)
{
	unsigned char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | cp >> 6);
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | cp >> 12);
		u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | cp >> 18);
		u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return tj_put(b, u, n);
}

static inline bool tj_hex4(struct tj_in *in, unsigned long *cp)
{
	*cp = 0;
	for (int i = 0; i < 4; i++) {
		char c = *in->p++;
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return tj_fail(in, "bad \\u escape");
		*cp = *cp << 4 | d;
	}
	return true;
}

static inline bool tj_escape(struct tj_in *in, struct tj_buf *b)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	unsigned long cp, lo;
	const char *e = *in->p ? strchr(from, *in->p) : NULL;

	if (e) {
		in->p++;
		return tj_put(b, &to[e - from], 1);
	}
	if (*in->p++ != 'u')
		return tj_fail(in, "bad escape");
	if (!tj_hex4(in, &cp))
		return false;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return tj_fail(in, "lone low surrogate");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (in->p[0] != '\\' || in->p[1] != 'u')
			return tj_fail(in, "lone high surrogate");
		in->p += 2;
		if (!tj_hex4(in, &lo))
			return false;
		if (lo < 0xdc00 || lo > 0xdfff)
			return tj_fail(in, "bad surrogate pair");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	return tj_put_cp(b, cp);
}

static inline bool tj_string(struct tj_in *in, char **out)
{
	struct tj_buf b = { 0 };

	if (*in->p++ != '"')
		return tj_fail(in, "expected a string");
	tj_put(&b, "", 0);
	for (;;) {
		unsigned char c = (unsigned char)*in->p;
		size_t n;

		if (c == '"') {
			in->p++;
			break;
		}
		if (c == '\\') {
			in->p++;
			if (!tj_escape(in, &b))
				goto bad;
			continue;
		}
		if (c < 0x20) {
			tj_fail(in, c ? "raw control byte in a string" : "unterminated string");
			goto bad;
		}
		n = tj_utf8((const unsigned char *)in->p);
		if (n == 0) {
			tj_fail(in, "invalid UTF-8 in a string");
			goto bad;
		}
		if (!tj_put(&b, in->p, n))
			goto bad;
		in->p += n;
	}
	if (!b.b)
		return tj_fail(in, "out of memory");
	*out = b.b;
	return true;
bad:
	free(b.b);
	return tj_fail(in, "bad string");
}

static inline bool tj_digits(struct tj_in *in)
{
	const char *s = in->p;

	while (*in->p >= '0' && *in->p <= '9')
		in->p++;
	return in->p > s;
}

static inline bool tj_number(struct tj_in *in, struct tj *v)
{
	const char *s = in->p;

	if (*in->p == '-')
		in->p++;
	if (*in->p == '0')
		in->p++;
	else if (!(*in->p >= '1' && *in->p <= '9') || !tj_digits(in))
		return tj_fail(in, "bad number");
	if (*in->p == '.') {
		in->p++;
		if (!tj_digits(in))
			return tj_fail(in, "bad fraction");
	}
	if (*in->p == 'e' || *in->p == 'E') {
		in->p++;
		if (*in->p == '+' || *in->p == '-')
			in->p++;
		if (!tj_digits(in))
			return tj_fail(in, "bad exponent");
	}
	v->type = TJ_NUM;
	v->s = strndup(s, (size_t)(in->p - s));
	return v->s ? true : tj_fail(in, "out of memory");
}

static inline bool tj_value(struct tj_in *in, struct tj *v);

static inline bool tj_add(struct tj *v, struct tj *kid, char *key)
{
	struct tj *nv = realloc(v->v, (v->n + 1) * sizeof(*nv));

	if (!nv)
		return false;
	v->v = nv;
	if (v->type == TJ_OBJ) {
		char **nk = realloc(v->k, (v->n + 1) * sizeof(*nk));

		if (!nk)
			return false;
		v->k = nk;
		v->k[v->n] = key;
	}
	v->v[v->n++] = *kid;
	return true;
}

static inline bool tj_members(struct tj_in *in, struct tj *v, char close)
{
	in->p++;
	tj_ws(in);
	if (*in->p == close) {
		in->p++;
		return true;
	}
	for (;;) {
		struct tj kid = { 0 };
		char *key = NULL;

		tj_ws(in);
		if (close == '}') {
			if (!tj_string(in, &key))
				return false;
			for (size_t i = 0; i < v->n; i++) {
				if (strcmp(v->k[i], key) == 0) {
					free(key);
					return tj_fail(in, "duplicate key");
				}
			}
			tj_ws(in);
			if (*in->p++ != ':') {
				free(key);
				return tj_fail(in, "expected ':'");
			}
		}
		if (!tj_value(in, &kid) || !tj_add(v, &kid, key)) {
			tj_free(&kid);
			free(key);
			return tj_fail(in, "bad member");
		}
		tj_ws(in);
		if (*in->p == ',') {
			in->p++;
			continue;
		}
		if (*in->p++ == close)
			return true;
		return tj_fail(in, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static inline bool tj_value(struct tj_in *in, struct tj *v)
{
	bool ok;

	memset(v, 0, sizeof(*v));
	tj_ws(in);
	switch (*in->p) {
	case '{':
	case '[':
		if (++in->depth > TJ_MAX_DEPTH)
			return tj_fail(in, "too deep");
		v->type = *in->p == '{' ? TJ_OBJ : TJ_ARR;
		ok = tj_members(in, v, *in->p == '{' ? '}' : ']');
		in->depth--;
		return ok;
	case '"':
		v->type = TJ_STR;
		return tj_string(in, &v->s);
	case 't':
	case 'f':
	case 'n': {
		static const char *const lits[] = { "true", "false", "null" };

		for (int i = 0; i < 3; i++) {
			size_t n = strlen(lits[i]);

			if (strncmp(in->p, lits[i], n) == 0) {
				in->p += n;
				v->type = i == 2 ? TJ_NULL : TJ_BOOL;
				v->b = i == 0;
				return true;
			}
		}
		return tj_fail(in, "bad literal");
	}
	default:
		return tj_number(in, v);
	}
}

/* Parse a whole document.  On failure, `err` says why and where. */
static inline bool tj_parse(const char *text, struct tj *v, char *err, size_t cap)
{
	struct tj_in in = { .p = text };

	if (tj_value(&in, v)) {
		tj_ws(&in);
		if (*in.p == '\0')
			return true;
		tj_fail(&in, "garbage after the document");
	}
	tj_free(v);
	snprintf(err, cap, "%s at byte %zu", in.err ? in.err : "error", (size_t)(in.p - text));
	return false;
}

static inline const struct tj *tj_get(const struct tj *v, const char *key)
{
	for (size_t i = 0; v && v->type == TJ_OBJ && i < v->n; i++) {
		if (strcmp(v->k[i], key) == 0)
			return &v->v[i];
	}
	return NULL;
}

static inline const struct tj *tj_at(const struct tj *v, size_t i)
{
	return v && v->type == TJ_ARR && i < v->n ? &v->v[i] : NULL;
}

static inline const char *tj_str(const struct tj *v)
{
	return v && v->type == TJ_STR ? v->s : NULL;
}

/* An integer member (no fraction or exponent). */
static inline bool tj_int(const struct tj *v, long long *out)
{
	char *end;

	if (!v || v->type != TJ_NUM)
		return false;
	errno = 0;
	*out = strtoll(v->s, &end, 10);
	return errno == 0 && *end == '\0';
}

static inline const struct tj *tj_find(const struct tj *arr, const char *key, const char *value)
{
	for (size_t i = 0; arr && arr->type == TJ_ARR && i < arr->n; i++) {
		const char *s = tj_str(tj_get(&arr->v[i], key));

		if (s && strcmp(s, value) == 0)
			return &arr->v[i];
	}
	return NULL;
}

#endif
