/*
 * nginx-loyalty: records to and from JSON (jansson), as described by
 * schema/member.schema.json and schema/tier.schema.json.
 */

#ifndef _LOYALTY_JSON_H_INCLUDED_
#define _LOYALTY_JSON_H_INCLUDED_


#include <jansson.h>

#include "loyalty_record.h"


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


#endif /* _LOYALTY_JSON_H_INCLUDED_ */
