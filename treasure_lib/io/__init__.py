"""Files at the edges: H5 input (`h5`), token output (`tokens`)."""
