// the build marker's properties, if any
// mode: read
MATCH (b:Build {id: "current"})
RETURN properties(b) AS build
