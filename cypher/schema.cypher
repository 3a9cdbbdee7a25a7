// uniqueness constraints and indexes of the hashtag graph; idempotent (IF NOT EXISTS)
// mode: write
CREATE CONSTRAINT hashtag_name IF NOT EXISTS FOR (h:Hashtag) REQUIRE h.name IS UNIQUE;
CREATE CONSTRAINT user_name IF NOT EXISTS FOR (u:User) REQUIRE u.name IS UNIQUE;
CREATE CONSTRAINT post_id IF NOT EXISTS FOR (p:Post) REQUIRE p.id IS UNIQUE;
CREATE CONSTRAINT build_id IF NOT EXISTS FOR (b:Build) REQUIRE b.id IS UNIQUE;
CREATE INDEX hashtag_longtail IF NOT EXISTS FOR (h:Hashtag) ON (h.longtail);
CREATE INDEX post_split IF NOT EXISTS FOR (p:Post) ON (p.split)
