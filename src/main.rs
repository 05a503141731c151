fn main() {
    println!("answerline");
}
