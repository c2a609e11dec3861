//! Writing images into an OCI image layout directory.
