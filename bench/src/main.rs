fn main() { println!("benchmarks: not written yet"); }
