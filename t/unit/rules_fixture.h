/*
 * nginx-loyalty unit tests: a rules document (schema/rules.schema.json)
 * that the events' tests apply and the rules' tests vary.
 */

#ifndef _RULES_FIXTURE_H_INCLUDED_
#define _RULES_FIXTURE_H_INCLUDED_


static const char  fixture_rules_doc[] =
    "{\"version\":1,\"signup_tier\":\"basic\","
    "\"member\":{\"spend\":50000,\"skus\":[{\"sku\":\"nappies-128\"}],"
    "\"tier\":\"vip\"},"
    "\"partner\":{\"skus\":[{\"sku\":\"nappies-128\",\"qty\":100}],"
    "\"tier\":\"partner\"},"
    "\"upgrades\":[{\"tier\":\"vip\",\"spend\":100000},"
    "{\"tier\":\"ka\",\"spend\":500000}],"
    "\"points\":{\"spend_per_point\":100,\"actions\":{\"share\":5,"
    "\"invite\":20,\"group_buy\":30,\"assist\":50},"
    "\"referral\":{\"level1\":500,\"level2\":200}},"
    "\"lifecycle\":{\"at_risk\":60,\"dormant\":120,\"lost\":365},"
    "\"rfm\":{\"recency\":[30,60,90,180],\"frequency\":[2,4,8,16],"
    "\"monetary\":[12800,50000,200000,1000000]},"
    "\"segments\":[{\"name\":\"A1\",\"r\":5,\"f\":5,\"m\":5}]}";


#endif /* _RULES_FIXTURE_H_INCLUDED_ */
