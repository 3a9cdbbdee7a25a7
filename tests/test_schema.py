"""The edge record shared by relations, store and export."""

def test_edge_order_turns_its_evidence():
    from v2ht_kg.kg.schema import Edge

    e = Edge("puppy", "dog", "ss", evidence={"synset_a": "puppy.n.01", "synset_b": "dog.n.01",
                                             "direction": "b_hypernym_of_a", "depth": 1})
    assert (e.a, e.b) == ("dog", "puppy")
    assert e.evidence == {"synset_b": "puppy.n.01", "synset_a": "dog.n.01", "direction": "a_hypernym_of_b", "depth": 1}
