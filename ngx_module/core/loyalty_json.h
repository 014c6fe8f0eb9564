/*
 * nginx-loyalty: records to and from JSON (jansson), as described by
 * schema/member.schema.json, tier.schema.json, price.schema.json,
 * code.schema.json and clicks.schema.json.
 */

#ifndef _LOYALTY_JSON_H_INCLUDED_
#define _LOYALTY_JSON_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "loyalty_code.h"
#include "loyalty_record.h"


/*
 * One field of an object: its name, its JSON type (JSON_TRUE: a boolean),
 * whether it must be there, and where in a struct it is read to.
 *
 * loyalty_json_check() checks an object against the fields (name, type,
 * required); loyalty_json_read_ints() reads each integer field with a
 * range (max above min), checked, into the integer of size bytes at off.
 * loyalty_json_read() copies what is there without a check (name, type,
 * off): JSON_STRING into a loyalty_json_text_t, JSON_INTEGER into a
 * json_int_t, JSON_OBJECT, JSON_ARRAY or LOYALTY_JSON_ANY into a json_t *.
 */
#define LOYALTY_JSON_ANY  (-1)

typedef struct {
    const char  *name;
    int          type;
    int          required;
    size_t       off;
    json_int_t   min;
    json_int_t   max;
    size_t       size;
} loyalty_json_field_t;

/* a field that is only checked */
#define loyalty_json_field(name, jtype, required)                           \
    { name, jtype, required, 0, 0, 0, 0 }

#define LOYALTY_JSON_END  loyalty_json_field(NULL, 0, 0)

/* a field loyalty_json_read() copies into member of type */
#define loyalty_json_member(name, jtype, type, member)                       \
    { name, jtype, 0, offsetof(type, member), 0, 0, 0 }

/* an integer field loyalty_json_read_ints() reads into member of type */
#define loyalty_json_int_field(name, required, min, max, type, member)       \
    { name, JSON_INTEGER, required, offsetof(type, member), min, max,        \
      sizeof(((type *) 0)->member) }


/* a string member of an object: its text, pointing into the object */
typedef loyalty_str_t  loyalty_json_text_t;


/* the fields of a member (schema/member.schema.json) */
extern const loyalty_json_field_t  loyalty_member_fields[];


/*
 * Rejects unknown fields, missing required ones and wrong types; fields
 * ends with a NULL name.  An integral real (1.0) counts as an integer.
 */
int loyalty_json_check(json_t *obj, const loyalty_json_field_t *fields,
    char *err, size_t errlen);
/*
 * Each integer field with a range (max above min) of a checked object
 * into the integer at out + off: 0 when absent, -1 with err when it is
 * outside the range; in the order of fields.
 */
int loyalty_json_read_ints(json_t *obj, const loyalty_json_field_t *fields,
    void *out, char *err, size_t errlen);
/* loyalty_json_check(), then loyalty_json_read_ints() */
int loyalty_json_check_read(json_t *obj, const loyalty_json_field_t *fields,
    void *out, char *err, size_t errlen);
/*
 * Copies the fields of obj into out (fields ends with a NULL name, 32
 * at most); one absent or of another type is NULL or 0.  Returns the
 * fields found, bit i for fields[i]: 0 when obj is not an object.
 */
uint32_t loyalty_json_read(json_t *obj, const loyalty_json_field_t *fields,
    void *out);
/* JSON Schema's integers: integral reals too, if a double holds them */
int loyalty_json_is_integer(json_t *v, json_int_t *out);
/*
 * The optional integer field name of a checked object, 0 when absent;
 * -1 with err when it is outside min..max.
 */
int loyalty_json_int(json_t *obj, const char *name, json_int_t min,
    json_int_t max, json_int_t *out, char *err, size_t errlen);
/*
 * The string field name of a checked object, which check accepts
 * (loyalty_check_id(), loyalty_check_tier_name()): 0, or -1 with its err
 */
typedef int (*loyalty_json_check_pt)(const char *name, const char *s,
    size_t len, char *err, size_t errlen);
int loyalty_json_string(json_t *obj, const char *name,
    loyalty_json_check_pt check, const char **s, size_t *len, char *err,
    size_t errlen);
/* the string field name of a checked object, which must be an id */
int loyalty_json_id(json_t *obj, const char *name, const char **s,
    size_t *len, char *err, size_t errlen);
/*
 * The optional RFC 3339 field name, 0 when absent; when present, flag is
 * added to *flags (a record's flags, widened).
 */
int loyalty_json_time(json_t *obj, const char *name, unsigned flag,
    unsigned *flags, int64_t *out, char *err, size_t errlen);
/*
 * The string field name of a checked object as an index into names[n]:
 * 0 with *out, or -1 with err listing the names
 */
int loyalty_json_name(json_t *obj, const char *name,
    const char *const *names, size_t n, int *out, char *err, size_t errlen);
/*
 * Gives each element of the array arr to each, with its index and data,
 * in order: 0, or -1 with each's err named "where[i]: ...".  arr may be
 * NULL (no elements); its size is the caller's to bound.
 */
typedef int (*loyalty_json_each_pt)(json_t *v, size_t i, void *data,
    char *err, size_t errlen);
int loyalty_json_each(json_t *arr, const char *where,
    loyalty_json_each_pt each, void *data, char *err, size_t errlen);
/* sets name to the UTC RFC 3339 form of t */
void loyalty_json_set_time(json_t *obj, const char *name, int64_t t);


/*
 * The decoders check every field against the schema and fill err with
 * the reason on failure.  Strings in the result point into obj.
 */
int loyalty_member_from_json(json_t *obj, const char **id, size_t *id_len,
    loyalty_member_t *m, char *err, size_t errlen);
json_t *loyalty_member_to_json(const char *id, size_t id_len,
    const loyalty_member_t *m);

int loyalty_tier_from_json(json_t *obj, const char **name, size_t *name_len,
    loyalty_tier_t *t, char *err, size_t errlen);
json_t *loyalty_tier_to_json(const char *name, size_t name_len,
    const loyalty_tier_t *t);

/* ov has room for LOYALTY_PRICE_OVERRIDES entries */
int loyalty_price_from_json(json_t *obj, const char **sku, size_t *sku_len,
    loyalty_price_t *p, loyalty_price_override_t *ov, char *err,
    size_t errlen);
json_t *loyalty_price_to_json(const char *sku, size_t sku_len,
    const loyalty_price_t *p);

/*
 * code receives the normalized code (LOYALTY_CODE_MAX bytes).  A target
 * URL must name one of the nhosts hosts; created_at defaults to now.
 */
int loyalty_code_from_json(json_t *obj, const char *const *hosts,
    const size_t *host_lens, size_t nhosts, int64_t now, char *code,
    size_t *code_len, loyalty_code_t *c, char *err, size_t errlen);
json_t *loyalty_code_to_json(const char *code, size_t code_len,
    const loyalty_code_t *c);

/* one code's counts of one day (days since 1970-01-01) */
json_t *loyalty_clicks_to_json(const char *code, size_t code_len,
    int64_t day, const uint64_t *counts);


#endif /* _LOYALTY_JSON_H_INCLUDED_ */
