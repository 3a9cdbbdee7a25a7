// One user by name with the number of training posts the store holds for it
// (no row for an unknown user).
// mode: read
// param user: "alice"
MATCH (u:User {name: $user})
RETURN u.name AS name,
       COUNT { (u)-[:POSTED]->(:Post) } AS posts
